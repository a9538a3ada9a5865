"""The deployed scan's ranking model scored by its SageMaker endpoint.

``CST_RANKING_ENDPOINT`` names the endpoint serving the promoted ranking model: the scan then
scores through it (calibration and signals from the registry artefact); unset, the artefact's
trees are evaluated in process. An endpoint error makes the model's agents (ml, ensemble) abstain
with the reason: never a fallback to the in-process evaluator.

The model is a real one: the walk-forward evaluation fitted on the recorded data (the slice of
coins and the period of tests/integration/test_skill_evaluation.py). moto's ``sagemaker-runtime`` answers ``invoke_endpoint`` from a queue of
results configured through its documented ``/moto-api/static/sagemaker/endpoint-results`` API
(it does not run a model); here that queue holds the scores the same booster gives the same
rows, as the xgboost container serving it would. Error answers come from botocore's
``Stubber`` on a real client (moto never fails an invocation). Before it scores, the scan
checks the endpoint serves the promoted version: the control plane's ``DescribeEndpoint``
answer is a ``Stubber``'s too (an endpoint ``InService`` on the version's configuration), one
per scan run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import polars as pl
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from cryptosmarttrader.adapters.ranking_bundle import (
    bundle_artifact,
    load_ranking_bundle,
    save_ranking_bundle,
)
from cryptosmarttrader.adapters.sagemaker_deployer import ranking_version_name
from cryptosmarttrader.adapters.sagemaker_predictor import SageMakerRanker, decode_scores
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.services.model_registry import MlSettings
from cryptosmarttrader.services.scan import RANKING_LOOKBACK_DAYS
from cryptosmarttrader.services.scoring import RankingModel, ranking_rows, ranking_scan_votes
from cryptosmarttrader.wiring import ranking_server
from tests.support.skill import Tampered, evaluation

pytestmark = pytest.mark.realdata

ENDPOINT = "cst-rank"
VERSION = 3  # the promoted version of the registry the endpoint serves


@pytest.fixture(scope="module")
def evaluated(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RankingModel, pl.DataFrame, int]:
    result = evaluation(data_dir)  # Tampered(data_dir, None), 30 boosting rounds
    folder = tmp_path_factory.mktemp("model")
    save_ranking_bundle(folder, result)
    day = result.rows.filter(pl.col("prob").is_not_null())["day"].max()
    assert isinstance(day, int)
    asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
    window = Tampered(data_dir, None).daily_universe(asof, RANKING_LOOKBACK_DAYS)
    return folder, load_ranking_bundle(folder), window, day * DAY_MS


@pytest.fixture(scope="module")
def folder(evaluated: tuple[Path, RankingModel, pl.DataFrame, int]) -> Path:
    return evaluated[0]


@pytest.fixture(scope="module")
def served(
    evaluated: tuple[Path, RankingModel, pl.DataFrame, int],
) -> tuple[RankingModel, pl.DataFrame, int]:
    return evaluated[1:]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def _features(model: RankingModel, window: pl.DataFrame, asof_ms: int) -> np.ndarray:
    rows, _ = ranking_rows(
        window, asof_ms, members=None, top_n=model.top_n,
        gate_days=model.gate_days, min_volume_usd=model.min_volume_usd,
    )  # fmt: skip
    return (
        rows.select(pl.col(f"{s}_pct").cast(pl.Float64).fill_null(np.nan) for s in model.signals)
        .to_numpy()
        .astype(np.float64)
    )


def _queue(*bodies: str) -> None:
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": b, "ContentType": "text/csv"} for b in bodies]},
        timeout=5,
    )


def _in_service(folder: Path, *, scans: int = 1) -> Stubber:
    """The control plane describing the endpoint ``InService`` on the promoted version's
    configuration, once per scan run (a further DescribeEndpoint would find no answer)."""
    client = boto3.client(
        "sagemaker", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    stub = Stubber(client)
    config = ranking_version_name(ENDPOINT, VERSION, bundle_artifact(folder))
    for _ in range(scans):
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT, "EndpointConfigName": config,
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
                "EndpointStatus": "InService", "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                "LastModifiedTime": datetime(2026, 1, 1, tzinfo=UTC),
            },
            {"EndpointName": ENDPOINT},
        )  # fmt: skip
    stub.activate()
    return stub


def _remote(model: RankingModel, folder: Path, runtime: object, control: Stubber) -> RankingModel:
    return ranking_server(
        model, ENDPOINT, lambda: runtime, version=VERSION, artifact=bundle_artifact(folder),
        sagemaker=lambda: control.client,
    )  # fmt: skip


def test_no_endpoint_configured_scores_in_process_without_building_a_client(
    served: tuple[RankingModel, pl.DataFrame, int],
) -> None:
    model, _, _ = served

    def no_client() -> object:
        raise AssertionError("no endpoint configured: no sagemaker-runtime client")

    assert ranking_server(model, None, no_client) is model
    assert ranking_server(model, "", no_client) is model
    assert model.served_by == "in process"


def test_the_endpoint_named_by_the_environment_scores_the_scan(
    served: tuple[RankingModel, pl.DataFrame, int],
    folder: Path,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, window, asof_ms = served
    # Given the deployment names the ranking endpoint
    monkeypatch.setenv("CST_RANKING_ENDPOINT", ENDPOINT)
    endpoint = MlSettings().ranking_endpoint
    assert endpoint == ENDPOINT
    control = _in_service(folder)
    remote = _remote(model, folder, boto3.client("sagemaker-runtime"), control)
    assert isinstance(remote.ranker, SageMakerRanker) and remote.ranker.endpoint == ENDPOINT
    assert remote.ranker.to_bytes() == model.ranker.to_bytes()
    # and the endpoint answers with the served booster's scores of the day's rows, one a line
    x = _features(model, window, asof_ms)
    _queue("\n".join(repr(float(v)) for v in model.ranker.score(x)) + "\n")

    # When the scan's ranking path scores the day through it
    votes, _ = ranking_scan_votes(remote, window, asof_ms)
    local, _ = ranking_scan_votes(model, window, asof_ms)
    control.assert_no_pending_responses()  # checked once, before scoring the whole day

    # Then every coin votes with the calibrated probability the in-process path gives
    assert votes.height == local.height > 5
    assert votes["abstain_reason"].null_count() == votes.height
    assert votes["symbol"].to_list() == local["symbol"].to_list()
    assert np.allclose(votes["probability"].to_numpy(), local["probability"].to_numpy())
    # and the scan's decision basis says where the scores came from
    assert f"scored by SageMaker endpoint {ENDPOINT}" in remote.description


def test_an_endpoint_answer_that_does_not_fit_the_rows_makes_the_ranking_agent_abstain(
    served: tuple[RankingModel, pl.DataFrame, int], folder: Path, aws: None
) -> None:
    model, window, asof_ms = served
    remote = _remote(model, folder, boto3.client("sagemaker-runtime"), _in_service(folder))
    _queue("0.5\n")  # one score for many rows

    votes, _ = ranking_scan_votes(remote, window, asof_ms)

    assert votes.height > 5 and votes["probability"].null_count() == votes.height
    (reason,) = set(votes["abstain_reason"].to_list())
    assert reason.startswith(f"ranking endpoint {ENDPOINT} failed: endpoint returned 1 scores")


def test_an_endpoint_error_is_an_abstention_with_its_reason_never_the_in_process_scores(
    served: tuple[RankingModel, pl.DataFrame, int], folder: Path
) -> None:
    model, window, asof_ms = served
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    stub = Stubber(client)
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received server error (500) from primary",
        http_status_code=424,
    )
    remote = _remote(model, folder, client, _in_service(folder))

    with stub:
        votes, quality = ranking_scan_votes(remote, window, asof_ms)

    stub.assert_no_pending_responses()
    assert votes.height > 5 and votes["probability"].null_count() == votes.height
    (reason,) = set(votes["abstain_reason"].to_list())
    assert reason.startswith(f"ranking endpoint {ENDPOINT} failed:")
    assert "ModelError" in reason
    assert quality.clean.height > 0  # the rest of the scan's inputs are intact


@pytest.mark.parametrize("body", [b"0.1\nnan\n", b"0.1\n", b"0.1\nx\n"])
def test_scores_that_are_not_one_finite_number_per_row_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_scores(body, 2)
    assert decode_scores(b"-1.5,0.25\n", 2).tolist() == [-1.5, 0.25]

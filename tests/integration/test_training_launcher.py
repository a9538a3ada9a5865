"""SageMaker training-job launcher on moto: source dir, channel, CreateTrainingJob, registration.

moto implements the training-job control plane only: CreateTrainingJob is recorded and
DescribeTrainingJob answers ``Completed`` at once with the output URI, but nothing runs and no
``model.tar.gz`` is written. The test therefore plays the job's data plane itself: it writes
what ``ml/train.py`` writes to ``SM_MODEL_DIR`` (``write_outputs`` of a model trained locally on
real bars, the same entry point) to the job's output URI. That training works is proven by
``tests/integration/test_ml_training.py``; whether the framework image runs the package is not
provable here (see docs/ml.md).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import polars as pl
import pytest
from ml import train as train_entry

from cryptosmarttrader.adapters.model_registry_sagemaker import SageMakerModelRegistry
from cryptosmarttrader.adapters.sagemaker_training import (
    SageMakerTrainingJobs,
    source_dir_tarball,
    training_image_uri,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.services.model_lifecycle import TrainedModel
from cryptosmarttrader.services.model_registry import ModelRegistryService
from cryptosmarttrader.services.training_launcher import TrainingLauncher, TrainingParams
from cryptosmarttrader.settings import AwsResources
from tests.integration.test_ml_training import (  # noqa: F401 - fixtures
    TRAIN_END,
    trained_models,
    universe,
)
from tests.support.aws import moto_stack

pytestmark = pytest.mark.realdata

REPO = Path(__file__).parents[2]
REGION, BUCKET, GROUP = "us-east-1", "train-lake", "cst-daily-ml"
ROLE = "arn:aws:iam::123456789012:role/cst-sagemaker"


def _model_tarball(model: TrainedModel, tmp: Path) -> bytes:
    train_entry.write_outputs(model, tmp / "model", tmp / "output")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted((tmp / "model").iterdir()):
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def test_a_training_job_is_started_in_script_mode_and_its_model_registered(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    universe: pl.DataFrame,  # noqa: F811
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    resources = AwsResources(lake_bucket=BUCKET, region=REGION)
    with moto_stack(monkeypatch, resources, now=datetime(2019, 7, 1, tzinfo=UTC)) as clients:
        # Given the SageMaker registry, the lake, and the real bars up to train_end
        sm = boto3.client("sagemaker", region_name=REGION)
        registry = SageMakerModelRegistry(
            GROUP, sagemaker=sm, s3=clients.s3, bucket=BUCKET,
            image_uri=f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1",
            serving_code=(REPO / "ml" / "inference.py").read_bytes(),
        )  # fmt: skip
        registry.ensure_group()
        clock = FixedClock(datetime(2019, 7, 1, 6, tzinfo=UTC))
        polls: list[float] = []
        launcher = TrainingLauncher(
            SageMakerTrainingJobs(sm, clients.s3, BUCKET),
            ModelRegistryService(registry, clock),
            clock,
            image_uri=training_image_uri(REGION),
            role_arn=ROLE,
            sleep=polls.append,
        )
        channel = io.BytesIO()
        universe.filter(pl.col("ts") < 1_561_939_200_000).write_parquet(channel)  # < 2019-07-01
        params = TrainingParams(train_end=TRAIN_END, first_day=date(2017, 6, 1), rounds=60,
                                git_commit="abc123")  # fmt: skip
        # When the launcher starts the job
        name = launcher.start(params, source_dir_tarball(REPO), channel.getvalue())
        job = sm.describe_training_job(TrainingJobName=name)
        # Then it is a script-mode job of ml/train.py on a Python 3.12 framework image,
        # as the SageMaker role, reading the lake's ml/training prefix, writing under models/
        assert name == "cst-daily-ml-20190701-060000"
        assert job["AlgorithmSpecification"]["TrainingImage"] == (
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
            "pytorch-training:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
        )
        assert job["RoleArn"] == ROLE
        hyper = {k: json.loads(v) for k, v in job["HyperParameters"].items()}
        assert hyper["sagemaker_program"] == "train.py"
        assert hyper["train-end"] == "2019-06-30" and hyper["first-day"] == "2017-06-01"
        assert hyper["rounds"] == "60" and hyper["git-commit"] == "abc123"
        (channel_config,) = job["InputDataConfig"]
        assert channel_config["ChannelName"] == "train"
        prefix = channel_config["DataSource"]["S3DataSource"]["S3Uri"]
        assert prefix == f"s3://{BUCKET}/ml/training/{name}/train/"
        assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/models/training-jobs"
        # and the channel holds the bars, the source dir the entry point, package and requirements
        uploaded = clients.s3.get_object(
            Bucket=BUCKET, Key=f"ml/training/{name}/train/daily.parquet"
        )
        assert pl.read_parquet(io.BytesIO(uploaded["Body"].read())).height > 0
        source_key = hyper["sagemaker_submit_directory"].removeprefix(f"s3://{BUCKET}/")
        source = clients.s3.get_object(Bucket=BUCKET, Key=source_key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(source), mode="r:gz") as tar:
            names = set(tar.getnames())
            member = tar.extractfile("requirements.txt")
            assert member is not None
            requirements = member.read().decode()
        assert "xgboost-cpu" in requirements  # the framework image brings Python, not xgboost
        assert {"train.py", "inference.py", "requirements.txt",
                "cryptosmarttrader/domain/features.py",
                "cryptosmarttrader/services/model_lifecycle.py"} <= names  # fmt: skip
        assert not any(n.startswith(("cryptosmarttrader/cli", "cryptosmarttrader/handlers"))
                       for n in names)  # fmt: skip
        # When the job's output appears (the test writes what ml/train.py writes) and it is awaited
        artifacts = job["ModelArtifacts"]["S3ModelArtifacts"]
        model = trained_models["full"]
        clients.s3.put_object(
            Bucket=BUCKET,
            Key=artifacts.removeprefix(f"s3://{BUCKET}/"),
            Body=_model_tarball(model, tmp_path),
        )
        version = launcher.wait(name, poll_seconds=5)
        # Then the model is registered with the card train.py recorded, byte-identical artifact
        assert version.version == 1 and version.card == model.card
        assert registry.artifact(1) == (tmp_path / "model" / "model.json").read_bytes()
        assert registry.reference(1) == model.reference
        assert polls == []  # moto reports Completed on the first describe


def test_the_training_image_runs_a_python_the_package_supports() -> None:
    # the package's requires-python lower bound against the image tag's pyXY
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lower = re.search(r">=\s*3\.(\d+)", project["requires-python"])
    assert lower is not None
    image = re.search(r"-py3(\d+)-", training_image_uri(REGION))
    assert image is not None
    assert int(image.group(1)) >= int(lower.group(1))
    with pytest.raises(ValueError, match="CST_TRAINING_IMAGE_URI"):
        training_image_uri("xx-nowhere-1")

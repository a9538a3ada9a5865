"""Embedded local AWS: resources exist, state survives across contexts, bad snapshots stop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import SNAPSHOT_FILE, SnapshotError, embedded_aws


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_creates_the_contract_resources(tmp_path: Path) -> None:
    # Given an empty state folder, When the embedded AWS starts
    with embedded_aws(tmp_path, AwsResources()) as aws:
        tables = set(aws.dynamodb.list_tables()["TableNames"])
        state_keys = aws.dynamodb.describe_table(TableName="cst-state")["Table"]["KeySchema"]
        buckets = [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
        switch = json.loads(aws.ssm.get_parameter(Name="/cst/kill-switch")["Parameter"]["Value"])
    # Then the three tables, the bucket and the kill-switch (off) exist
    assert tables == {"cst-orders", "cst-positions", "cst-state"}
    assert state_keys == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert buckets == ["cst-lake-local"]
    assert (switch["on"], switch["reason"]) == (False, "local default")


def test_state_survives_between_two_contexts(tmp_path: Path) -> None:
    clock = FixedClock()
    # Given a first session that records an order, a watermark, the kill-switch and a lake object
    with embedded_aws(tmp_path, AwsResources()) as aws:
        res = aws.resources
        assert DynamoOrderStore(res.orders_table, aws.dynamodb).put_new(
            {"client_order_id": "c" * 32, "status": OrderStatus.NEW, "qty": "1"}
        )
        DynamoStateStore(res.state_table, aws.dynamodb).put("wm", "binance#1d", {"ts": 5})
        SsmKillSwitch(res.kill_switch_param, aws.ssm, clock).set(True, "test stop", "tester")
        aws.s3.put_object(Bucket=res.lake_bucket, Key="exchange=x/part.parquet", Body=b"PAR1")
    assert (tmp_path / SNAPSHOT_FILE).is_file()
    assert (tmp_path / "lake" / "exchange=x" / "part.parquet").read_bytes() == b"PAR1"
    # When a second session starts from the same folder (a new `cst` process)
    with embedded_aws(tmp_path, AwsResources()) as aws:
        res = aws.resources
        order = DynamoOrderStore(res.orders_table, aws.dynamodb).get("c" * 32)
        wm = DynamoStateStore(res.state_table, aws.dynamodb).get("wm", "binance#1d")
        switch = SsmKillSwitch(res.kill_switch_param, aws.ssm, clock).status()
        body = aws.s3.get_object(Bucket=res.lake_bucket, Key="exchange=x/part.parquet")["Body"]
        lake = body.read()
        aws.s3.delete_object(Bucket=res.lake_bucket, Key="exchange=x/part.parquet")
    # Then it sees everything the first wrote
    assert order is not None
    assert order["status"] == "NEW"
    assert wm == {"ts": 5}
    assert (switch.on, switch.reason, switch.actor) == (True, "test stop", "tester")
    assert lake == b"PAR1"
    # And a deleted lake object is deleted on disk too
    assert not (tmp_path / "lake" / "exchange=x" / "part.parquet").exists()


def test_snapshot_is_deterministic_and_rewritten_atomically(tmp_path: Path) -> None:
    # Given a saved session
    with embedded_aws(tmp_path, AwsResources()):
        pass
    first = (tmp_path / SNAPSHOT_FILE).read_bytes()
    # When an idle session runs again
    with embedded_aws(tmp_path, AwsResources()):
        pass
    # Then the snapshot is byte-identical and no temp file is left behind
    assert (tmp_path / SNAPSHOT_FILE).read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"version": 99}',
        '{"version": 1, "tables": {'
        '"cst-orders": [{"client_order_id": {"X": 1}}]}, '
        '"parameters": []}',
    ],
)
def test_corrupt_snapshot_names_the_file_and_overwrites_nothing(
    tmp_path: Path, content: str
) -> None:
    # Given a corrupt snapshot
    snap = tmp_path / SNAPSHOT_FILE
    snap.write_text(content)
    # When the embedded AWS starts, Then it refuses with the file's path
    with pytest.raises(SnapshotError, match=str(snap)), embedded_aws(tmp_path, AwsResources()):
        pass
    # And the file is untouched
    assert snap.read_text() == content


def test_credentials_are_dummy_inside_and_restored_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the caller's own credential variables
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "caller-key")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    # When inside the embedded AWS
    with embedded_aws(tmp_path, AwsResources()):
        inside = os.environ.get("AWS_ACCESS_KEY_ID")
    # Then dummy credentials were used inside and the caller's restored afterwards
    assert inside != "caller-key"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "caller-key"
    assert "AWS_SESSION_TOKEN" not in os.environ


def test_endpoint_mode_only_ensures_resources_on_a_moto_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cst_devtools.loopback_http import quick_moto_server

    # Given a moto server (stands in for LocalStack or AWS)
    server = quick_moto_server("127.0.0.1", 0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        # When two sessions run against it
        with embedded_aws(tmp_path, AwsResources()) as aws:
            assert aws.mode == "endpoint"
            DynamoStateStore("cst-state", aws.dynamodb).put("wm", "k", {"ts": 1})
        with embedded_aws(tmp_path, AwsResources()) as aws:
            got = DynamoStateStore("cst-state", aws.dynamodb).get("wm", "k")
    finally:
        from cst_devtools.local_deploy import reset_moto_backends

        reset_moto_backends(port)  # moto's backends are per process: leave nothing behind
        server.stop()
    # Then the server kept the state (no local snapshot is involved)
    assert got == {"ts": 1}
    assert not (tmp_path / SNAPSHOT_FILE).exists()

"""`AwsClients` builds each client at its first use, once per process, and only the ones used."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from cryptosmarttrader.adapters import aws_clients
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.settings import AwsResources


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    """Every client the module builds: (service, region, endpoint), each a new object."""
    calls: list[tuple[str, str, str | None]] = []

    def factory(service: str) -> Any:
        def make(region: str, endpoint_url: str | None = None) -> object:
            time.sleep(0.01)  # a build takes time: threads that race overlap in it
            calls.append((service, region, endpoint_url))
            return object()

        return make

    for service in ("dynamodb", "s3", "ssm"):
        monkeypatch.setattr(aws_clients, f"{service}_client", factory(service))
    return calls


def _resources() -> AwsResources:
    return AwsResources(region="eu-west-1", aws_endpoint_url="http://127.0.0.1:5000")


def test_build_makes_no_client_and_the_first_use_makes_only_that_one(
    made: list[tuple[str, str, str | None]],
) -> None:
    clients = AwsClients.build(_resources())
    assert made == [] and clients.built == frozenset()

    ssm = clients.ssm

    assert made == [("ssm", "eu-west-1", "http://127.0.0.1:5000")]
    assert clients.built == {"ssm"}
    assert clients.ssm is ssm  # kept: a warm function reuses it
    assert made == [("ssm", "eu-west-1", "http://127.0.0.1:5000")]


def test_each_client_is_its_own_service_s(made: list[tuple[str, str, str | None]]) -> None:
    clients = AwsClients.build(_resources())
    got = {clients.dynamodb, clients.s3, clients.ssm}
    assert len(got) == 3
    assert [service for service, _, _ in made] == ["dynamodb", "s3", "ssm"]
    assert clients.resources == _resources()


def test_threads_that_first_use_a_client_together_share_one(
    made: list[tuple[str, str, str | None]],
) -> None:
    clients = AwsClients.build(_resources())
    start = threading.Barrier(8)
    seen: list[object] = []

    def use() -> None:
        start.wait()
        seen.append(clients.dynamodb)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(client) for client in seen}) == 1
    assert [service for service, _, _ in made] == ["dynamodb"]

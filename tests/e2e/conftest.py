"""One deployment of the synthesized app to a local moto server, shared by every e2e module that
needs it (deploying takes minutes: `-n` runs keep these modules on one worker, see the
``xdist_group`` marks and ``--dist loadgroup``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.faults import free_port
from cryptosmarttrader.adapters.local_deploy import DeployResult, deploy, moto_server, npx_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_GROUP = "local_deploy"


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployResult]:
    """The stack deployed with cdklocal to a moto server on 127.0.0.1, in this process."""
    if npx_path() is None:
        message = "npx (Node.js) is needed to run cdklocal for the local deployment"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    started = time.monotonic()
    with moto_server(free_port()) as endpoint:
        result = deploy(endpoint, REPO_ROOT, tmp_path_factory.mktemp("cdk") / "outputs.json")
        result.seconds["total"] = round(time.monotonic() - started, 1)
        yield result

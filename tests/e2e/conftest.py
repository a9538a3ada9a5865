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
from cryptosmarttrader.adapters.local_deploy import (
    DeployResult,
    LocalStackState,
    deploy,
    moto_server,
    npx_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_GROUP = "local_deploy"


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployResult]:
    """The stack deployed with cdklocal to a moto server on 127.0.0.1, in this process; or, with
    ``CST_E2E_STACK_DIR`` naming the state dir of a running `cst local up` (e.g. ``--detach``),
    that stack, so a developer deploys once and reruns the e2e tests against it."""
    existing = os.environ.get("CST_E2E_STACK_DIR")
    if existing:
        recorded = LocalStackState.load(Path(existing))
        if recorded is None or not recorded.stack_outputs:
            pytest.fail(f"CST_E2E_STACK_DIR={existing}: no deployed stack recorded there")
        yield DeployResult(recorded.endpoint, dict(recorded.stack_outputs), {})
        return
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

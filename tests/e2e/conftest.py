"""One deployment of the synthesized app to a local moto server, shared by every e2e module that
needs it (`-n` runs keep these modules on one worker, see the ``xdist_group`` marks and
``--dist loadgroup``).

The app is synthesized for the local target once per test run and context, in process, through
the same cache as the infrastructure tests (``tests/infrastructure/conftest.py``), and cdklocal
deploys that cloud assembly (``--app <dir>``) instead of synthesizing it again for its bootstrap
and its deploy. Bundling is skipped there: the template is the same (each function's asset hash
is a digest of its pinned requirements and source, bundled or not), and nothing runs the uploaded
code on moto (the tests run the deployed functions' handlers in-process); the bundles themselves
are built and checked in ``tests/infrastructure/test_bundling.py``, and a full ``cdk synth`` with
bundling runs in the documented-commands test (docs/infrastructure.md).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from cst_devtools.faults import free_port
from cst_devtools.local_deploy import (
    DeployResult,
    LocalStackState,
    deploy,
    moto_server,
    npx_path,
)
from infra.app import LOCAL_CONTEXT_KEY
from tests.infrastructure.conftest import SKIP_BUNDLING, synthesized_template

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve()
DEPLOY_GROUP = "local_deploy"
DEMO_GROUP = "demo"


def local_assembly(into: Path, context: Mapping[str, str] | None = None) -> Path:
    """The app synthesized for a local target (``-c cst:local=true`` plus ``context``), copied
    to ``into`` so each deployment has its own assembly dir (the CLI locks and writes there)."""
    synthesized = synthesized_template(
        {**SKIP_BUNDLING, LOCAL_CONTEXT_KEY: "true", **(context or {})}
    )
    shutil.copytree(synthesized.outdir, into)
    return into


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the session's deployment run one after the other, where the first of them
    was collected. moto's backends are process-wide, and every other moto server or ``mock_aws``
    started in this process empties them, the deployed stack included: a module with its own
    server (test_kill_switch_redeploy.py, test_fake_exchange_deployed.py) run between two users
    of the deployment would leave the second with no stack. (``-n`` runs keep them together on
    one worker with the ``local_deploy`` group, tests/xdist_scheduling.py.)"""

    def shared(item: pytest.Item) -> bool:
        # this conftest's `deployed`, not another module's fixture of the same name (the
        # execution stack of test_execution_handler.py is one, on mock_aws)
        info = getattr(item, "_fixtureinfo", None)
        if info is None or "deployed" not in info.name2fixturedefs:
            return False
        definition = info.name2fixturedefs["deployed"][-1]
        return Path(definition.func.__code__.co_filename).resolve() == HERE

    users = [item for item in items if shared(item)]
    if users:
        first = items.index(users[0])
        others = [item for item in items if not shared(item)]
        items[:] = [*others[:first], *users, *others[first:]]


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
    work = tmp_path_factory.mktemp("cdk")
    assembly = local_assembly(work / "assembly")
    with moto_server(free_port()) as endpoint:
        result = deploy(endpoint, REPO_ROOT, work / "outputs.json", assembly_dir=assembly)
        result.seconds["total"] = round(time.monotonic() - started, 1)
        yield result


@dataclass(frozen=True)
class DemoRun:
    """One `cst demo` run as a user types it, and the state it left."""

    exit_code: int
    stdout: str
    stderr: str
    state: Path  # as the demo left it: read it, or take a copy to change it

    def copy_state(self, into: Path) -> Path:
        """A state dir of one's own, as the demo left it (a server over it saves back there)."""
        shutil.copytree(self.state, into)
        return into


@pytest.fixture(scope="session")
def demo_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`cst demo --data <data> --state-dir <dir> --top 5 --ingest-bars 20` (what `make demo`
    runs, on a small ingest window) run once per test process: test_demo.py asserts on its output
    and state, test_web_dashboard.py serves a copy of that state (both modules are in one xdist
    group, so one worker runs it once). The demo configures the Lambdas through os.environ, as a
    Lambda runtime would: the environment is restored after it."""
    from typer.testing import CliRunner

    from cryptosmarttrader.cli import app as cli_app

    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("demo") / "demo"
    args = ["demo", "--data", str(data_dir), "--state-dir", str(state), "--top", "5"]
    try:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ["COLUMNS"] = "200"  # the output's lines, as test_demo.py reads them
        result = CliRunner().invoke(cli_app, [*args, "--ingest-bars", "20"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return DemoRun(result.exit_code, result.stdout, result.stderr, state)

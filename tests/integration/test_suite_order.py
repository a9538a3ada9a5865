"""The order a single-process run gives the tests that share the session's local deployment
(``tests/e2e/conftest.py``: ``pytest_collection_modifyitems``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = "tests/e2e/test_local_deploy.py"
REDEPLOY = "tests/e2e/test_kill_switch_redeploy.py"
SCHEDULED = "tests/e2e/test_scheduled_functions.py"
# its own fixture is also named `deployed` (the execution stack on mock_aws, per test)
OWN_FIXTURE = "tests/integration/test_execution_handler.py"


def _collected(*paths: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *paths],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.split("::")[0] for line in done.stdout.splitlines() if "::" in line]


def test_the_deployment_s_tests_run_together_and_no_other_test_is_moved() -> None:
    # Given the deployment's modules collected around a module with its own server, and a module
    # whose own, unrelated fixture is also called `deployed`
    order = _collected(DEPLOY, REDEPLOY, OWN_FIXTURE, SCHEDULED)
    # Then the deployment's tests run one after the other, from where the first was collected,
    # and every other test keeps its place
    modules = list(dict.fromkeys(order))
    assert modules == [DEPLOY, SCHEDULED, REDEPLOY, OWN_FIXTURE], modules
    assert order == sorted(order, key=modules.index)

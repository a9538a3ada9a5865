"""`cst local up` (foreground or --detach), `status` and `down` on a real moto server process.

The cdklocal deployment itself (minutes, needs npx) is exercised by tests/e2e/test_local_deploy;
here it is replaced by a recorder so the server's lifecycle is what is tested: a detached server
that answers and outlives the command, its log when it cannot start, and `status` / `down`
finding whichever `cst local up` started the stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app
from cst_devtools.faults import free_port
from cst_devtools.local_deploy import DeployResult, LocalStackState, is_our_server

OUTPUTS = {"ScanFunctionName": "cst-scan"}
FAKE_DEPLOY = (
    "import sys\n"
    "from cst_devtools.local_deploy import DeployResult\n"
    "import cst_devtools.local_deploy as local_deploy\n"
    "local_deploy.deploy = lambda endpoint, project, out: DeployResult(endpoint, "
    f"{OUTPUTS!r}, {{'deploy': 0.0}})\n"
    "from cryptosmarttrader.cli import app\n"
    "app(sys.argv[1:])\n"
)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    deployed: list[str] = []

    def deploy(endpoint: str, project: Path, outputs: Path) -> DeployResult:
        # the server must really answer AWS calls before the stacks go to it
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="cst-probe")
        deployed.append(endpoint)
        return DeployResult(endpoint, dict(OUTPUTS), {"deploy": 0.0})

    monkeypatch.setattr("cst_devtools.local_deploy.deploy", deploy)
    return CliRunner()


def _wait_gone(pid: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_our_server(pid):
            return True
        time.sleep(0.1)
    return False


def test_detached_server_outlives_the_command_and_down_stops_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    state = ["--state-dir", str(tmp_path)]
    # When the stack is started detached
    up = runner.invoke(app, ["local", "up", "--detach", *state])
    assert up.exit_code == 0, up.output
    recorded = LocalStackState.load(tmp_path)
    assert recorded is not None and recorded.mode == "detached" and recorded.pid
    try:
        # Then the server runs on after the command returned, logging to the state dir
        assert recorded.stack_outputs == OUTPUTS
        assert "listening" in Path(str(recorded.log_file)).read_text()
        status = runner.invoke(app, ["local", "status", *state])
        assert status.exit_code == 0, status.output
        assert "running" in status.output and "cst-scan" in status.output
        # And a second `up` refuses to start another one
        again = runner.invoke(app, ["local", "up", "--detach", *state])
        assert again.exit_code == 1 and "already running" in again.output
    finally:
        down = runner.invoke(app, ["local", "down", *state])
    # And `down` stops exactly that process and forgets it
    assert down.exit_code == 0, down.output
    assert "stopped the detached server" in down.output
    assert _wait_gone(recorded.pid)
    gone = runner.invoke(app, ["local", "status", *state])
    assert gone.exit_code == 1 and "no local stack" in gone.output


def test_a_detached_server_that_cannot_start_shows_its_log(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Given the port is taken by another listener
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When the stack is started detached on it
        up = runner.invoke(app, ["local", "up", "--detach", "--port", str(port), "--state-dir",
                                 str(tmp_path)])  # fmt: skip
    # Then it fails within seconds, showing the server's own error from its log
    assert up.exit_code == 1
    assert "cannot listen on 127.0.0.1" in up.output
    assert "local-server.log" in up.output
    assert LocalStackState.load(tmp_path) is None


def test_status_and_down_find_a_stack_started_in_the_foreground(
    runner: CliRunner, tmp_path: Path
) -> None:
    port = free_port()
    # Given `cst local up` serving in the foreground of another terminal
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_DEPLOY, "local", "up", "--port", str(port), "--state-dir",
         str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ENDPOINT_URL": ""},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240  # a cold CLI start on a loaded machine
        while time.monotonic() < deadline:
            recorded = LocalStackState.load(tmp_path)
            if recorded is not None and recorded.stack_outputs:
                break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        else:
            raise AssertionError("the foreground stack never recorded itself")
        # When `status` runs elsewhere
        status = runner.invoke(app, ["local", "status", "--state-dir", str(tmp_path)])
        # Then it finds the foreground server
        assert status.exit_code == 0, status.output
        assert "foreground" in status.output and str(proc.pid) in status.output
        # And `down` stops it cleanly
        down = runner.invoke(app, ["local", "down", "--state-dir", str(tmp_path)])
        assert down.exit_code == 0, down.output
        assert proc.wait(timeout=20) == 0
        assert LocalStackState.load(tmp_path) is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


@pytest.mark.parametrize("bootstrap", [True, False])
def test_a_redeploy_can_skip_the_bootstrap_its_endpoint_already_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bootstrap: bool
) -> None:
    # Given the cdklocal runs recorded instead of run (the outputs file written as the CLI does)
    from cst_devtools import local_deploy

    ran: list[str] = []

    def record(argv: list[str], env: object, cwd: Path, timeout_s: float) -> str:
        ran.append(argv[len(local_deploy.CDKLOCAL)])
        if "--outputs-file" in argv:
            out = Path(argv[argv.index("--outputs-file") + 1])
            out.write_text(json.dumps({"CryptoSmartTrader": OUTPUTS}))
        return ""

    monkeypatch.setattr(local_deploy, "_run", record)
    monkeypatch.setattr(local_deploy, "npx_path", lambda: "/usr/bin/npx")

    # When a cloud assembly is deployed, bootstrapping or not
    result = local_deploy.deploy(
        "http://127.0.0.1:1", tmp_path, tmp_path / "outputs.json",
        assembly_dir=tmp_path / "assembly", bootstrap=bootstrap,
    )  # fmt: skip

    # Then the bootstrap runs only when asked, and the deploy's outputs are read either way
    assert ran == (["bootstrap", "deploy"] if bootstrap else ["deploy"])
    assert ("bootstrap" in result.seconds) is bootstrap
    assert result.stack_outputs == OUTPUTS


def test_a_taken_port_is_refused_before_the_server_libraries_load() -> None:
    """The port is checked first, so a server that cannot start says so without first spending
    seconds importing moto's server and every backend."""
    from tests.support.fresh_interpreter import run_fresh

    code = (
        "import socket\n"
        "from cst_devtools.local_deploy import PortInUseError, moto_server\n"
        "taken = socket.socket(); taken.bind(('127.0.0.1', 0)); taken.listen()\n"
        "try:\n"
        "    with moto_server(taken.getsockname()[1]):\n"
        "        answer = 'started'\n"
        "except PortInUseError as exc:\n"
        "    answer = str(exc)\n"
    )
    run = run_fresh(code, ["moto", "moto.server"])
    assert "cannot listen on 127.0.0.1" in str(run.answer), run.answer
    assert run.loaded == []

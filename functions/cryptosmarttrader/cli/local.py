"""`cst local up|down|status`: the synthesized stacks on a local AWS (moto on 127.0.0.1, or
LocalStack via ``--endpoint`` / ``AWS_ENDPOINT_URL``). See docs/local-deployment.md."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cryptosmarttrader.cli._common import fail, state_dir
from cryptosmarttrader.cli._progress import show_progress, working

if TYPE_CHECKING:
    from cst_devtools.local_deploy import DeployResult, LocalStackState

# The deployment adapters (moto server, CDK, botocore) are imported inside the commands.

PROJECT_DIR = Path(__file__).resolve().parents[3]
STOP_WAIT_S = 15.0

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
console = Console(highlight=False)

StateOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="Where the stack file lives (default .cst).")
]


def _print(result: DeployResult) -> None:
    console.print(f"endpoint: {result.endpoint}")
    console.print(f"deployed in {result.seconds}")
    for key, value in sorted(result.stack_outputs.items()):
        console.print(f"  {key} = {value}")


def _deploy(endpoint: str, state: Path) -> DeployResult:
    from cst_devtools.local_deploy import deploy

    with working(f"synthesizing and deploying the stacks to {endpoint}", show_progress()):
        return deploy(endpoint, PROJECT_DIR, state / "cdk-outputs.json")


def _running(state: LocalStackState) -> bool:
    """The recorded server still runs (and still answers, when we know its port)."""
    from cst_devtools.local_deploy import is_our_server, wait_for_server

    if state.pid is None:
        return True  # external: not ours to judge
    if not is_our_server(state.pid):
        return False
    return state.port is None or wait_for_server(state.port, timeout_s=2.0)


def _refuse_second_stack(directory: Path) -> None:
    from cst_devtools.local_deploy import LocalStackState

    existing = LocalStackState.load(directory)
    if existing and existing.pid and _running(existing):
        fail(
            f"a local stack is already running ({existing.mode}, pid {existing.pid}, "
            f"{existing.endpoint}); `cst local down` first",
            code=1,
        )


@app.command("up")
def up(
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Deploy to this endpoint (LocalStack, a running moto "
            "server) instead of starting one. Default: AWS_ENDPOINT_URL, else start.",
        ),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", min=1024, max=65535)] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="Leave the server running in the background (log in the state dir)."
        ),
    ] = False,
    state: StateOpt = None,
) -> None:
    """Start a moto server on 127.0.0.1 (unless --endpoint) and deploy the stacks to it."""
    from cst_devtools.faults import free_port
    from cst_devtools.local_deploy import DeployError, LocalStackState

    directory = state_dir(state)
    target = endpoint or os.environ.get("AWS_ENDPOINT_URL")
    if target:
        try:
            result = _deploy(target, directory)
        except DeployError as exc:
            fail(str(exc), code=1)
        LocalStackState(endpoint=target, stack_outputs=result.stack_outputs, mode="external").save(
            directory
        )
        _print(result)
        return
    _refuse_second_stack(directory)
    chosen = port or free_port()
    if detach:
        _up_detached(directory, chosen)
        return
    _up_foreground(directory, chosen)


def _up_detached(directory: Path, port: int) -> None:
    from cst_devtools.local_deploy import DeployError, start_detached_server

    try:
        server = start_detached_server(directory, port)
    except DeployError as exc:
        fail(str(exc), code=1)
    server.save(directory)  # `status` and `down` find it while the stacks deploy
    try:
        result = _deploy(server.endpoint, directory)
    except DeployError as exc:
        _stop(server, directory)
        fail(f"{exc}\n(the local server was stopped)", code=1)
    server.model_copy(update={"stack_outputs": result.stack_outputs}).save(directory)
    _print(result)
    console.print(f"server pid {server.pid}, log {server.log_file}; stop it with `cst local down`")


def _up_foreground(directory: Path, port: int) -> None:
    from cst_devtools.local_deploy import (
        STATE_FILE,
        DeployError,
        LocalStackState,
        PortInUseError,
        local_endpoint,
        moto_server,
    )

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `cst local down` from elsewhere
    mine = LocalStackState(
        endpoint=local_endpoint(port), pid=os.getpid(), port=port, mode="foreground"
    )
    try:
        with moto_server(port) as url:
            mine.save(directory)
            try:
                result = _deploy(url, directory)
            except DeployError as exc:
                fail(str(exc), code=1)
            mine = mine.model_copy(update={"stack_outputs": result.stack_outputs})
            mine.save(directory)
            _print(result)
            console.print("serving; Ctrl-C (or `cst local down`) to stop")
            while not stop.wait(1.0):
                pass
    except PortInUseError as exc:
        fail(str(exc), code=1)
    finally:
        current = LocalStackState.load(directory)
        if current is not None and current.pid == os.getpid():
            (directory / STATE_FILE).unlink(missing_ok=True)


def _stop(current: LocalStackState, directory: Path) -> bool:
    """SIGTERM the recorded server if it is ours and alive; wait for it; forget it."""
    from cst_devtools.local_deploy import STATE_FILE, is_our_server

    stopped = False
    if current.pid is not None and is_our_server(current.pid):
        os.kill(current.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and is_our_server(current.pid):
            time.sleep(0.1)
        stopped = True
    (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped


@app.command("status")
def status(state: StateOpt = None) -> None:
    """Show the endpoint, server process and stack outputs of the stack `cst local up` started
    (in the foreground or with --detach)."""
    from cst_devtools.local_deploy import LocalStackState

    current = LocalStackState.load(state_dir(state))
    if current is None:
        fail("no local stack recorded; run `cst local up`", code=1)
    running = _running(current)
    console.print(f"endpoint: {current.endpoint}")
    who = f"pid {current.pid}" if current.pid else "external"
    console.print(f"server: {current.mode}, {who} ({'running' if running else 'not running'})")
    if current.log_file:
        console.print(f"log: {current.log_file}")
    for key, value in sorted(current.stack_outputs.items()):
        console.print(f"  {key} = {value}")
    if not current.stack_outputs:
        console.print("stacks: not deployed (yet)")
    if not running:
        raise typer.Exit(1)


@app.command("down")
def down(state: StateOpt = None) -> None:
    """Stop the server `cst local up` started (foreground or detached; that pid only)."""
    from cst_devtools.local_deploy import STATE_FILE, LocalStackState

    directory = state_dir(state)
    current = LocalStackState.load(directory)
    if current is None:
        fail("no local stack recorded", code=1)
    if current.mode == "external":
        (directory / STATE_FILE).unlink(missing_ok=True)
        console.print(f"forgot {current.endpoint} (not started by cst: left running)")
        return
    if _stop(current, directory):
        console.print(f"stopped the {current.mode} server, pid {current.pid}")
    else:
        console.print(f"the {current.mode} server (pid {current.pid}) was not running; forgot it")

"""`cst local up|down|status`: the synthesized stacks on a local AWS (moto on 127.0.0.1, or
LocalStack via ``--endpoint`` / ``AWS_ENDPOINT_URL``). See docs/local-deployment.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cryptosmarttrader.cli._common import fail, state_dir
from cryptosmarttrader.cli._progress import show_progress, working

if TYPE_CHECKING:
    from cryptosmarttrader.adapters.local_deploy import DeployResult

# The deployment adapters (moto server, CDK, polars) are imported inside the commands.

PROJECT_DIR = Path(__file__).resolve().parents[3]

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
console = Console(highlight=False)

StateOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="Where the pid/port file lives (default .cst).")
]


def _print(result: DeployResult) -> None:
    console.print(f"endpoint: {result.endpoint}")
    console.print(f"deployed in {result.seconds}")
    for key, value in sorted(result.stack_outputs.items()):
        console.print(f"  {key} = {value}")


def _deploy(endpoint: str, state: Path) -> DeployResult:
    from cryptosmarttrader.adapters.local_deploy import DeployError, deploy

    try:
        with working(f"synthesizing and deploying the stacks to {endpoint}", show_progress()):
            return deploy(endpoint, PROJECT_DIR, state / "cdk-outputs.json")
    except DeployError as exc:
        fail(str(exc), code=1)


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
        bool, typer.Option("--detach", help="Leave the server running in the background.")
    ] = False,
    state: StateOpt = None,
) -> None:
    """Start a moto server on 127.0.0.1 (unless --endpoint) and deploy the stacks to it."""
    from cryptosmarttrader.adapters.faults import free_port
    from cryptosmarttrader.adapters.local_deploy import (
        LocalStackState,
        local_endpoint,
        moto_server,
        wait_for_port,
    )

    directory = state_dir(state)
    target = endpoint or os.environ.get("AWS_ENDPOINT_URL")
    if target:
        result = _deploy(target, directory)
        LocalStackState(endpoint=target, stack_outputs=result.stack_outputs).save(directory)
        _print(result)
        return
    chosen = port or free_port()
    if detach:
        existing = LocalStackState.load(directory)
        if existing and existing.pid and _alive(existing.pid):
            fail(f"a local stack is already running (pid {existing.pid}); `cst local down` first")
        proc = subprocess.Popen(  # noqa: S603 - our interpreter and module
            [sys.executable, "-m", "cryptosmarttrader.adapters.local_deploy", str(chosen)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(chosen):
            proc.terminate()
            fail(f"the moto server did not listen on 127.0.0.1:{chosen} within 30s", code=1)
        url = local_endpoint(chosen)
        LocalStackState(endpoint=url, pid=proc.pid, port=chosen).save(directory)
        result = _deploy(url, directory)
        LocalStackState(
            endpoint=url, pid=proc.pid, port=chosen, stack_outputs=result.stack_outputs
        ).save(directory)
        _print(result)
        console.print(f"server pid {proc.pid}; stop it with `cst local down`")
        return
    with moto_server(chosen) as url:
        result = _deploy(url, directory)
        _print(result)
        console.print("serving; Ctrl-C to stop")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.wait(1.0):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@app.command("status")
def status(state: StateOpt = None) -> None:
    """Show the endpoint, server process and stack outputs of the last `cst local up`."""
    from cryptosmarttrader.adapters.local_deploy import LocalStackState

    current = LocalStackState.load(state_dir(state))
    if current is None:
        fail("no local stack recorded; run `cst local up`", code=1)
    running = current.pid is None or _alive(current.pid)
    console.print(f"endpoint: {current.endpoint}")
    console.print(
        f"server: {'pid ' + str(current.pid) if current.pid else 'external'} "
        f"({'running' if running else 'not running'})"
    )
    for key, value in sorted(current.stack_outputs.items()):
        console.print(f"  {key} = {value}")
    if not running:
        raise typer.Exit(1)


@app.command("down")
def down(state: StateOpt = None) -> None:
    """Stop the detached server that `cst local up --detach` started (that pid only)."""
    from cryptosmarttrader.adapters.local_deploy import LocalStackState

    directory = state_dir(state)
    current = LocalStackState.load(directory)
    if current is None:
        fail("no local stack recorded", code=1)
    if current.pid is not None and _alive(current.pid):
        os.kill(current.pid, signal.SIGTERM)
        console.print(f"stopped server pid {current.pid}")
    (directory / "local-stack.json").unlink(missing_ok=True)

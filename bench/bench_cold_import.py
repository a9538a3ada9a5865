"""Benchmark: each Lambda handler's cold import, against ``import boto3`` in the same run.

A Lambda cold start imports the handler module before the first event; boto3 is the yardstick
because every function imports it (the runtime provides it). Each case is a fresh interpreter
running ``import <module>``, run ``--repeat`` times in turn (so machine load hits every case
alike); the script prints the median wall and CPU time (user + system of the child) per case and
its ratio to the yardstick. CPU time is the steadier figure on a shared machine.

    uv run python bench/bench_cold_import.py [--repeat N] [--bundles [--python PYTHON3.12]]
        [--only HANDLER ...]

``--bundles`` imports each handler from its Lambda bundle built for this machine's architecture
(``.cst/lambda-bundles/<arch>``, built on first use; the deployed bundles are aarch64, their twin
holds the same files) with only that bundle and boto3 on ``sys.path`` (``-I``),
as in Lambda, under a CPython 3.12 (``--python``, default ``$CST_PYTHON312`` or ``python3.12``:
the bundles hold cp312 wheels), without writing bytecode (``-B``): Lambda's ``/var/task`` is
read-only, so a module whose bytecode the zip does not ship is compiled at every cold start, as
here. The kill-switch's bundle ships CPython 3.12 bytecode for all its modules
(``infra/constructs/bundling.py``), the others ship sources only; boto3 keeps its bytecode
caches, as the runtime's does. Without ``--bundles``: this checkout's virtual environment,
bytecode caches included.

Each handler gets two figures: its cold import, and the time until it can act — the import plus
what its first action imports, for a handler that defers modules to it (the API: its first
request that reads AWS imports the services, their pydantic models, the settings, the stores and
boto3, ``FIRST_ACTION_IMPORTS``); every other handler's import already holds all its first event
needs (the kill-switch's: the switch, the audit trail, logs and metrics). The script names the
fastest handler on each. Targets: the alarm → kill-switch handler and the API at most 1.5x
``import boto3`` on their cold import, and the kill-switch the fastest until it can act.
No asserts on timing: numbers depend on the machine; the import structure (no polars or numpy in
the lean handlers, nothing heavy in the API's or the kill-switch's import) is tested in
``tests/integration/test_lean_handlers.py``.

Measured in the virtual environment (2-core machine, load average ~9, median of 7, CPU):

* before the API's router: API 3.46x, kill-switch 1.27x (the fastest), health probe 1.70x,
  go-live 1.56–1.62x, ingest, execution, scan, drift and canary 3.8–5.0x;
* after, import / until it can act: API 0.37–0.41x / 1.71–2.01x, kill-switch 1.30–1.35x
  (both), health probe 1.64–1.69x, go-live 1.73–2.08x, the others 3.9–4.6x: the API is the
  fastest to import, the kill-switch the fastest to act; the kill-switch without boto3: 1.12x;
* from the bundles (``--bundles --only api alarm_killswitch health_probe``), before: API 5.38x
  (5.41x with a data route's imports), kill-switch 1.74–2.05x, compiling its 531 modules at
  every start; with its bytecode shipped: kill-switch 1.43–1.57x (load-dependent; one run over
  the target), then without boto3 and the SLI adapter 1.26–1.27x; API 0.75–0.99x / 3.10–3.73x
  until it can act, health probe 3.27x: the kill-switch is the fastest to act in both modes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5
YARDSTICK = "boto3"
# handler module → its bundle (infra/lambda_requirements/<name>.txt)
HANDLERS = {
    "cryptosmarttrader.handlers.alarm_killswitch": "killswitch",
    "cryptosmarttrader.handlers.api": "api",
    "cryptosmarttrader.handlers.health_probe": "health_probe",
    "cryptosmarttrader.handlers.golive_steps": "golive",
    "cryptosmarttrader.handlers.golive_slo": "golive",
    "cryptosmarttrader.handlers.ingest": "ingest",
    "cryptosmarttrader.handlers.execute": "execute",
    "cryptosmarttrader.handlers.scan": "scan",
    "cryptosmarttrader.handlers.drift": "drift",
    "cryptosmarttrader.handlers.model_canary": "model",
}
TARGETED = ("cryptosmarttrader.handlers.alarm_killswitch", "cryptosmarttrader.handlers.api")
# Handlers whose cold import defers modules to their first action → what that action imports.
# The API's first request that reads AWS imports a service, its pydantic models, the settings,
# the stores and boto3; every other handler imports at its cold start all its first event needs.
FIRST_ACTION_IMPORTS = {
    "cryptosmarttrader.handlers.api": (
        "cryptosmarttrader.handlers._common",
        "cryptosmarttrader.services.api",
        "cryptosmarttrader.services.dashboard",
        "cryptosmarttrader.adapters.dynamodb_store",
        "cryptosmarttrader.adapters.audit",
        "cryptosmarttrader.adapters.health",
    ),
}
FIRST_ACTION = " + first action"


def _bundle_dir(name: str) -> Path:
    """The bundle built for this machine's architecture (the deployed arm64 bundle's twin, built
    by the bundling tests; on an aarch64 machine, the deployed bundle itself)."""
    sys.path.insert(0, str(REPO_ROOT))  # the repository's infra package
    from infra.constructs.bundling import (
        IMPORTABLE_PYTHON_PLATFORM,
        PACKAGE_NAME,
        cached_bundle,
        requirements_file,
    )

    package = REPO_ROOT / "functions" / PACKAGE_NAME
    return cached_bundle(name, requirements_file(name), package, IMPORTABLE_PYTHON_PLATFORM)


def _boto3_dir() -> Path:
    import boto3

    return Path(boto3.__file__).resolve().parents[1]


def command(module: str, bundle: str | None, python: str = sys.executable) -> list[str]:
    """``bundle`` None: this environment; else the built bundle (and boto3) only."""
    if bundle is None:
        return [python, "-c", f"import {module}"]
    paths = [str(_bundle_dir(bundle)), str(_boto3_dir())]
    # -B: never write __pycache__ into a bundle (the zips ship none, so Lambda compiles too)
    return [python, "-I", "-B", "-c", f"import sys; sys.path[:0] = {paths!r}; import {module}"]


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv[-1]} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bundles", action="store_true", help="import from the built bundles")
    parser.add_argument(
        "--python",
        default=os.environ.get("CST_PYTHON312") or shutil.which("python3.12") or "python3.12",
        help="CPython 3.12 for --bundles",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="HANDLER",
        choices=[m.removeprefix("cryptosmarttrader.handlers.") for m in HANDLERS],
        help="these handlers only (e.g. --only api alarm_killswitch: fewer bundles to build)",
    )
    args = parser.parse_args()
    handlers = {
        module: bundle
        for module, bundle in HANDLERS.items()
        if not args.only or module.removeprefix("cryptosmarttrader.handlers.") in args.only
    }

    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CST_STAGE": "staging",
    }
    python = args.python if args.bundles else sys.executable
    cases = {YARDSTICK: command("boto3", None, python)}
    if args.bundles:  # boto3 alone on the path, as the runtime provides it
        cases[YARDSTICK] = [
            python,
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(_boto3_dir())]!r}; import boto3",
        ]
    for module, bundle in handlers.items():
        cases[module] = command(module, bundle if args.bundles else None, python)
    for module, deferred in FIRST_ACTION_IMPORTS.items():
        if module in handlers:
            both = ", ".join((module, *deferred))
            cases[module + FIRST_ACTION] = command(
                both, handlers[module] if args.bundles else None, python
            )
    for argv in cases.values():  # warm-up: bytecode caches, page cache
        run_once(argv, env)
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, argv in cases.items():
            wall, cpu = run_once(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)

    base_wall = statistics.median(walls[YARDSTICK])
    base_cpu = statistics.median(cpus[YARDSTICK])
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    # until it can act: the import, plus what its first action imports where it defers any
    act = {m: cpu.get(m + FIRST_ACTION, cpu[m]) for m in handlers}
    source = "built Lambda bundles" if args.bundles else "the virtual environment"
    print(f"cold import of each handler from {source}, median of {args.repeat} fresh processes")
    header = "until it can act"
    print(
        f"{'handler':<18} {'wall s':>7} {'x boto3':>7} {'cpu s':>7} {'x boto3':>7}"
        f"   {header + ': cpu s':>23} {'x boto3':>7}"
    )
    print(f"{YARDSTICK:<18} {base_wall:7.3f} {1:7.2f} {base_cpu:7.3f} {1:7.2f}")
    for module in handlers:
        wall = statistics.median(walls[module])
        marks = ""
        if module in TARGETED:
            ratio = cpu[module] / base_cpu  # the target is on the cold import
            marks = " ok" if ratio <= TARGET_RATIO else f" over {TARGET_RATIO}x"
        deferred = "(its first request's imports)" if module + FIRST_ACTION in cpu else ""
        print(
            f"{_short(module):<18} {wall:7.3f} {wall / base_wall:7.2f} {cpu[module]:7.3f} "
            f"{cpu[module] / base_cpu:7.2f}   {act[module]:23.3f} "
            f"{act[module] / base_cpu:7.2f}{marks} {deferred}"
        )
    print(f"fastest handler, plain import (CPU): {_short(min(handlers, key=cpu.__getitem__))}")
    print(f"fastest handler until it can act (CPU): {_short(min(handlers, key=act.__getitem__))}")


def _short(module: str) -> str:
    return module.removeprefix("cryptosmarttrader.handlers.")


if __name__ == "__main__":
    main()

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
the bundles hold cp312 wheels), without writing bytecode (``-B``): the zips ship no
``__pycache__``, so a Lambda cold start compiles every module of the bundle, as here; boto3
keeps its bytecode caches, as the runtime's does. Without ``--bundles``: this checkout's virtual
environment, bytecode caches included.

Targets: the alarm → kill-switch handler and the API handler at most 1.5x ``import boto3``.
The last row imports the API and then what its first request that reads AWS imports (services,
pydantic models, settings, stores, boto3): the cost its cold import defers, printed as a delta.
No asserts on timing: numbers depend on the machine; the import structure (no polars or numpy in
the lean handlers, nothing heavy in the API's or the kill-switch's import) is tested in
``tests/integration/test_lean_handlers.py``.

Measured in the virtual environment (2-core machine, load average ~9, median of 7, CPU):

* before the API's router: API 3.46x, kill-switch 1.27x (the fastest), health probe 1.70x,
  go-live 1.56–1.62x, ingest, execution, scan, drift and canary 3.8–5.0x;
* after: API 0.37x (the fastest: it imports neither boto3 nor pydantic's model layer), the API
  then a data route's imports 2.01x (+1.65x on that first request), kill-switch 1.35x, health
  probe 1.64x, go-live 1.78–2.08x, the others 3.9–4.3x;
* from the bundles (``--bundles --only api alarm_killswitch``), before: API 5.38x (5.41x with a
  data route's imports), kill-switch 1.74x; after: API 0.81x, the API then a data route's
  imports 3.32x, kill-switch 1.76x (over its target in this mode, code unchanged).
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
    "cryptosmarttrader.handlers.execute": "scan",
    "cryptosmarttrader.handlers.scan": "scan",
    "cryptosmarttrader.handlers.drift": "drift",
    "cryptosmarttrader.handlers.model_canary": "model",
}
TARGETED = ("cryptosmarttrader.handlers.alarm_killswitch", "cryptosmarttrader.handlers.api")
# What the API imports on its first request that reads AWS (a service, its pydantic models, the
# settings, the stores and boto3): deferred from its cold import, paid by that first request.
API_FIRST_REQUEST = "api, then a data route's imports"
API_ROUTE_IMPORTS = (
    "cryptosmarttrader.handlers._common",
    "cryptosmarttrader.services.api",
    "cryptosmarttrader.services.dashboard",
    "cryptosmarttrader.adapters.dynamodb_store",
    "cryptosmarttrader.adapters.audit",
    "cryptosmarttrader.adapters.health",
)


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
    api_module = "cryptosmarttrader.handlers.api"

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
    if api_module in handlers:
        first_request = ", ".join((api_module, *API_ROUTE_IMPORTS))
        cases[API_FIRST_REQUEST] = command(first_request, "api" if args.bundles else None, python)
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
    source = "built Lambda bundles" if args.bundles else "the virtual environment"
    print(f"cold import of each handler from {source}, median of {args.repeat} fresh processes")
    print(f"{'module':<48} {'wall s':>8} {'x boto3':>8} {'cpu s':>8} {'x boto3':>8}")
    for name in cases:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        mark = ""
        if name in TARGETED:
            mark = " ok" if cpu / base_cpu <= TARGET_RATIO else f" over {TARGET_RATIO}x"
        print(
            f"{name.removeprefix('cryptosmarttrader.handlers.'):<48} {wall:8.3f} "
            f"{wall / base_wall:8.2f} {cpu:8.3f} {cpu / base_cpu:8.2f}{mark}"
        )
    fastest = min(handlers, key=lambda m: statistics.median(cpus[m]))
    if api_module in handlers:
        cold = statistics.median(cpus[api_module])
        deferred = statistics.median(cpus[API_FIRST_REQUEST]) - cold
        print(
            f"the API's first data request imports what its cold start deferred: "
            f"+{deferred:.3f} s CPU (+{deferred / base_cpu:.2f}x boto3)"
        )
    print(f"fastest handler (CPU): {fastest.removeprefix('cryptosmarttrader.handlers.')}")


if __name__ == "__main__":
    main()

"""Benchmark: how long `cst` takes to start, against `python -c "import boto3"` in the same run.

Each case is a fresh process, run ``--repeat`` times in turn (so machine load hits every case
alike); the script prints the median wall time and the median CPU time (user + system of the
child) per case, and each case's ratio to the yardstick. CPU time is the steadier figure on a
shared machine: wall time also counts waiting for a core.

    uv run python bench/bench_cli_startup.py [--repeat N]

Cases: ``cst --help`` and ``cst killswitch status`` (target: under 1.5 s each), plus
``cst killswitch --help``. ``killswitch status`` runs against a scratch ``CST_STATE_DIR`` (one
warm-up run creates it first), so it includes starting the embedded local AWS (moto) and reading
the switch and the risk level. Python compiles modules to ``__pycache__`` on first import unless
``PYTHONDONTWRITEBYTECODE`` is set; the script reports that setting, because without bytecode
caches every run compiles each imported module again (several times slower).

No asserts on timing: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5


def _cst() -> list[str]:
    exe = shutil.which("cst", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "cryptosmarttrader.cli"]


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    cst = _cst()
    with tempfile.TemporaryDirectory(prefix="cst-bench-startup-") as state:
        env = {**os.environ, "CST_STATE_DIR": state}
        cases: dict[str, list[str]] = {
            'python -c "import boto3" (yardstick)': [sys.executable, "-c", "import boto3"],
            "cst --help": [*cst, "--help"],
            "cst killswitch --help": [*cst, "killswitch", "--help"],
            "cst killswitch status": [*cst, "killswitch", "status"],
        }
        run_once(cases["cst killswitch status"], env)  # warm-up: creates the local state
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, argv in cases.items():
                samples[name].append(run_once(argv, env))

    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}, "
        f"{args.repeat} runs per case"
    )
    medians = {
        name: (
            statistics.median(w for w, _ in runs),
            statistics.median(c for _, c in runs),
        )
        for name, runs in samples.items()
    }
    ref_wall, ref_cpu = next(iter(medians.values()))
    print(f"{'case':<40} {'wall s':>8} {'cpu s':>8} {'wall/ref':>9} {'cpu/ref':>8}  target")
    for name, (wall, cpu) in medians.items():
        verdict = "" if "yardstick" in name else ("ok" if cpu < TARGET_S else "over")
        print(
            f"{name:<40} {wall:>8.2f} {cpu:>8.2f} {wall / ref_wall:>8.1f}x {cpu / ref_cpu:>7.1f}x"
            f"  {verdict}"
        )
    print(f"target: each cst case under {TARGET_S} s (judged on CPU time; wall time includes load)")


if __name__ == "__main__":
    main()

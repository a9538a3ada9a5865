"""`make test` runs every check and the suite side by side in one sub-make (read from `make -n test`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "uv run ruff check .",
    "uv run ruff format --check .",
    "uv run mypy",
    "uv run lint-imports",
    "npm ci --no-audit --no-fund",
    "npm run build",
    "npm test",
)


def _dry_run(*args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    done = subprocess.run(
        ["make", "-n", *args, "test"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


def test_every_check_and_the_suite_run_in_one_parallel_sub_make() -> None:
    # When `make test` is dry-run
    lines = _dry_run()

    # Then the suite and the checks are one sub-make, three jobs at a time, each target's
    # output kept whole, the suite first so it starts as soon as the dashboard is built
    (sub_make,) = [line for line in lines if "--output-sync=target" in line]
    assert " -j 3 " in sub_make
    # every target runs to its end, so one run shows every failing check
    assert " --keep-going " in sub_make
    assert sub_make.split("--output-sync=target", 1)[1].split() == [
        "suite",
        "lint",
        "typecheck",
        "layers",
        "web-test",
    ]
    # and the suite runs once, on its workers, after the dashboard it serves is built
    suites = [i for i, line in enumerate(lines) if "uv run pytest" in line]
    assert len(suites) == 1, lines
    assert lines[suites[0]] == "uv run pytest -q -n 2 --durations=15"
    build = next(i for i, line in enumerate(lines) if "npm run build" in line)
    assert build < suites[0], lines
    # and every check is in it, each once
    for check in CHECKS:
        where = [i for i, line in enumerate(lines) if check in line]
        assert len(where) == 1, (check, lines)


def test_the_number_of_jobs_is_a_setting() -> None:
    # When a machine runs one target at a time
    lines = _dry_run("TEST_JOBS=1")

    # Then the sub-make says so
    (sub_make,) = [line for line in lines if "--output-sync=target" in line]
    assert " -j 1 " in sub_make

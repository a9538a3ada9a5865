"""`make test` runs every check, two at a time, before the suite (read from `make -n test`)."""

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


def test_every_check_runs_in_a_parallel_sub_make_before_the_suite() -> None:
    # When `make test` is dry-run
    lines = _dry_run()

    # Then the checks are one sub-make, two jobs at a time, each target's output kept whole
    (sub_make,) = [line for line in lines if "--output-sync=target" in line]
    assert " -j 2 " in sub_make
    assert sub_make.split("--output-sync=target", 1)[1].split() == [
        "lint",
        "typecheck",
        "layers",
        "web-test",
    ]
    # and every check is in it, each once, before the suite, which runs last on its workers
    pytest_at = next(i for i, line in enumerate(lines) if "uv run pytest" in line)
    assert lines[pytest_at] == "uv run pytest -q -n 2 --durations=15"
    assert pytest_at == len(lines) - 1
    for check in CHECKS:
        where = [i for i, line in enumerate(lines) if check in line]
        assert len(where) == 1, (check, lines)
        assert where[0] < pytest_at, (check, lines)


def test_the_number_of_check_jobs_is_a_setting() -> None:
    # When a machine runs the checks one at a time
    lines = _dry_run("CHECK_JOBS=1")

    # Then the sub-make says so
    (sub_make,) = [line for line in lines if "--output-sync=target" in line]
    assert " -j 1 " in sub_make

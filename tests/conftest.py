"""Shared fixtures. Real market data comes from CST_DATA_DIR (default ../shared/data).

Tests that need it skip with a reason on a developer machine without it, and FAIL in CI
(CI=true), so a missing data set can never turn the suite silently green.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cst_devtools.local_aws import serialize_moto_dynamodb

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_data_dir() -> Path:
    env = os.environ.get("CST_DATA_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = resolve_data_dir()
    if not (path / "coingecko_daily" / "coins").is_dir():
        message = (
            f"real market data not found at {path} "
            "(set CST_DATA_DIR to the folder holding coingecko_daily/ and binance_spot/)"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True, scope="session")
def _atomic_moto_dynamodb() -> None:
    """Tests that race threads against moto get DynamoDB's per-request atomicity (see
    ``serialize_moto_dynamodb``): a lost race must come from our code, not from moto."""
    serialize_moto_dynamodb()


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``-n`` runs share the suite as ``tests/xdist_scheduling.py`` says (``--dist loadgroup``)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.xdist_scheduling import SuiteScheduling

    return SuiteScheduling(config, log)

"""Shared fixtures. Real market data comes from CST_DATA_DIR (default ../shared/data).

Tests that need it skip with a reason on a developer machine without it, and FAIL in CI
(CI=true), so a missing data set can never turn the suite silently green.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

from cst_devtools.local_aws import patch_moto_dynamodb

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
    ``serialize_moto_dynamodb``): a lost race must come from our code, not from moto. Item
    values are answered as moto holds them (``fast_moto_attribute_values``), as locally
    (``patch_moto_dynamodb`` installs both)."""
    patch_moto_dynamodb()


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """Every boto3 session of a test process reads botocore's data files (service models,
    endpoint rules, partitions) through one loader, so each file is parsed once per process.

    ``mock_aws`` resets boto3's default session, so without this each test that builds clients
    under it parses the DynamoDB, S3 and SSM models again (about a quarter of a second per
    test). The loaded data is read-only, as it is for the clients of one long-lived session (a
    warm Lambda); boto3 appends its own data folder to the loader of each new session, so the
    shared loader's search paths are de-duplicated before that append."""
    loaders: dict[str | None, botocore.loaders.Loader] = {}
    create_loader = botocore.loaders.create_loader

    def shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        loader = loaders.get(search_path_string)
        if loader is None:
            loader = loaders[search_path_string] = create_loader(search_path_string)
        paths = loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
        return loader

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared_loader)
        yield


# The native thread pools a test worker's libraries start: polars' (rayon), OpenMP's (xgboost) and
# OpenBLAS's (numpy). Each sizes itself to every core of the machine.
THREAD_POOL_VARIABLES = ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_per_worker(cores: int, workers: int) -> int:
    """The machine's cores shared between the ``-n`` workers, at least one each."""
    return max(1, cores // max(1, workers))


def pytest_configure(config: pytest.Config) -> None:
    """``-n N`` runs: each worker's thread pools get its share of the cores.

    pytest-xdist starts one process per core, and each would start pools as wide as the whole
    machine: on 2 cores, 2 workers ran 4 polars threads and more for OpenMP and OpenBLAS.
    Threads that wake up and spin over the suite's many small frames only to find the other
    process busy cost CPU for nothing (measured: the suite took about 45 CPU-s less on one
    thread per worker, docs/testing.md). The workers inherit the controller's environment when
    they start, after this hook; a value already set (by the user or CI) is kept."""
    workers = getattr(config.option, "numprocesses", None)
    if not isinstance(workers, int):
        return
    limit = getattr(config.option, "maxprocesses", None)
    if limit:  # `--maxprocesses`: pytest-xdist starts no more workers than that
        workers = min(workers, limit)
    if hasattr(config, "workerinput") or workers < 2:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = str(threads_per_worker(cores or 1, workers))
    for name in THREAD_POOL_VARIABLES:
        os.environ.setdefault(name, share)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``-n`` runs share the suite as ``tests/xdist_scheduling.py`` says (``--dist loadgroup``)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.xdist_scheduling import SuiteScheduling

    return SuiteScheduling(config, log)

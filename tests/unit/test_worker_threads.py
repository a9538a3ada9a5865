"""`-n` runs give each worker's native thread pools its share of the cores (tests/conftest.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tests.conftest import THREAD_POOL_VARIABLES, pytest_configure, threads_per_worker


def _unset_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pool variable in the environment, and each one's absence restored at the end:
    ``delenv`` of an absent variable records nothing, so a value the hook set would stay in
    this process (and every command a later test starts) after the test."""
    for name in THREAD_POOL_VARIABLES:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _pools_set() -> list[str]:
    """The pool variables in this process's environment."""
    return [name for name in THREAD_POOL_VARIABLES if name in os.environ]


@pytest.mark.parametrize(
    ("cores", "workers", "threads"),
    [(2, 2, 1), (1, 2, 1), (8, 2, 4), (8, 3, 2), (16, 16, 1), (4, 0, 4)],
)
def test_the_cores_are_shared_between_the_workers_at_least_one_thread_each(
    cores: int, workers: int, threads: int
) -> None:
    assert threads_per_worker(cores, workers) == threads


def _controller(workers: object, maxprocesses: int | None = None) -> pytest.Config:
    option = SimpleNamespace(numprocesses=workers, maxprocesses=maxprocesses)
    return SimpleNamespace(option=option)  # type: ignore[return-value]


def test_the_controller_of_an_n_run_sets_every_pool_and_keeps_a_value_already_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a machine of 2 cores, polars' pool already sized by the user, the others not
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    _unset_pools(monkeypatch)
    monkeypatch.setenv("POLARS_MAX_THREADS", "2")
    # When the controller of `-n 2` is configured
    pytest_configure(_controller(2))
    # Then the user's value stays and the other pools get one thread per worker
    assert os.environ["POLARS_MAX_THREADS"] == "2"
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


@pytest.mark.parametrize("workers", [None, 0, 1, "auto"])
def test_a_run_without_several_workers_leaves_the_pools_as_they_are(
    workers: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unset_pools(monkeypatch)
    pytest_configure(_controller(workers))
    assert not _pools_set()


def test_a_run_limited_to_one_worker_leaves_the_pools_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _unset_pools(monkeypatch)
    pytest_configure(_controller(4, maxprocesses=1))  # `-n 4 --maxprocesses 1`: one worker
    assert not _pools_set()


def test_a_worker_sets_nothing_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    _unset_pools(monkeypatch)
    worker = SimpleNamespace(option=SimpleNamespace(numprocesses=2), workerinput={})
    pytest_configure(worker)  # type: ignore[arg-type]
    assert not _pools_set()


def test_this_worker_s_polars_pool_is_the_size_its_controller_gave_it() -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("not an -n run: the pools keep their own size")
    if int(os.environ["PYTEST_XDIST_WORKER_COUNT"]) < 2:  # `-n 1`, `--maxprocesses 1`
        pytest.skip("a single worker: its pools keep their own size")
    import polars as pl

    # the variable was in the environment before polars started its pool in this process
    assert pl.thread_pool_size() == int(os.environ["POLARS_MAX_THREADS"])


def test_the_cores_are_shared_between_the_workers_that_start_not_the_n_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a machine of 8 cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    _unset_pools(monkeypatch)
    # When the controller of `-n 8 --maxprocesses 2` is configured (pytest-xdist starts 2)
    pytest_configure(_controller(8, maxprocesses=2))
    # Then each of the 2 workers gets half the machine, not an eighth
    assert {os.environ[name] for name in THREAD_POOL_VARIABLES} == {"4"}


def test_checking_the_controller_leaves_this_process_s_environment_as_it_found_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a process whose environment sizes none of the pools (a run without -n)
    _unset_pools(monkeypatch)
    # When the controller's test runs and its monkeypatch is undone
    inner = pytest.MonkeyPatch()
    try:
        test_the_controller_of_an_n_run_sets_every_pool_and_keeps_a_value_already_set(inner)
    finally:
        inner.undo()
    # Then no pool variable is left for the later tests and the commands they start
    assert _pools_set() == []

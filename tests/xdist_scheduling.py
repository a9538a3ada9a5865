"""How ``pytest -n N`` shares the suite between its workers (``--dist loadgroup``, pyproject).

Three rules, in one table each:

* a module whose module-scoped fixture is expensive (a deployment, the demo's state, a trained
  model bundle) runs whole on one worker, so the fixture is built once (``WHOLE_MODULES``);
* modules that share one session fixture run on the same worker (``GROUPS``: the local
  deployment of the stack, shared by the e2e modules that drive it);
* every other test is its own unit, and the units start slowest first (``SLOW_FIRST``), so
  that no long test starts last while the other worker sits idle.

Why not only ``xdist_group`` marks: pytest-xdist 3.8 records a test's group by rewriting its node
id, which pytest 9.2's structured node ids ignore, so on those versions ``--dist loadgroup``
silently distributes grouped tests one by one (each worker then deploys its own stack and builds
its own demo state). A group suffix xdist does add (``...@group``) is still honoured.
"""

from __future__ import annotations

from xdist.scheduler import LoadGroupScheduling

# session fixtures shared by several modules: the modules of a group run on one worker
GROUPS: dict[str, str] = {
    "tests/e2e/test_local_deploy.py": "local_deploy",
    "tests/e2e/test_scheduled_functions.py": "local_deploy",
    # the ensemble bundle `cst model fit-ensemble` fits (once per process), served by both
    "tests/integration/test_agents_vote_realdata.py": "ensemble_bundle",
    "tests/integration/test_agents_deployed.py": "ensemble_bundle",
}

# modules whose module-scoped fixture costs seconds to minutes: built once, on one worker
WHOLE_MODULES: frozenset[str] = frozenset(
    {
        "tests/e2e/test_web_dashboard.py",  # the demo's state and a browser
        "tests/e2e/test_fake_exchange_deployed.py",  # a testnet stack deployed (its own server)
        "tests/integration/test_scan_with_model.py",  # a trained model bundle
        "tests/integration/test_chaos.py",  # the chaos lab
        "tests/integration/test_cli_data.py",  # the data-quality report of the whole data set
        "tests/infrastructure/test_compliance.py",  # cfn-lint / cdk-nag over the template
    }
)

# work units that take longest, started first (a prefix of the unit's scope); the rest follow in
# collection order. Ordered by what each unit costs (CPU seconds of the test and the commands it
# runs, measured with `pytest -n 0`; wall seconds on a busy machine are no guide), so that the
# last units to start are short and the two workers finish together.
_DOC = "tests/e2e/test_documented_commands.py::test_every_documented_command_runs_as_written"
SLOW_FIRST: tuple[str, ...] = (
    "local_deploy",  # the deployment (cdklocal) and the modules that drive it
    "tests/e2e/test_fake_exchange_deployed.py",  # its own testnet deployment
    f"{_DOC}[docs/ml.md]",  # ~80 s: a walk-forward evaluation and two trainings on real data
    "tests/integration/test_chaos.py",  # child processes under rlimits, four scans of real data
    f"{_DOC}[docs/infrastructure.md]",  # two `cdk synth` with bundling
    "tests/e2e/test_kill_switch_redeploy.py",  # two deployments
    f"{_DOC}[docs/risk-and-execution.md]",
    f"{_DOC}[README_OPERATIONS.md]",
    f"{_DOC}[docs/agents.md]",
    "tests/e2e/test_web_dashboard.py",
    f"{_DOC}[docs/evaluation.md]",
    "tests/infrastructure/test_bundling.py::test_cdk_cli_synth",
    "ensemble_bundle",  # the ensemble fit, the agents' scans and a lake ingested by schedule
    f"{_DOC}[docs/local-aws.md]",
    "tests/e2e/test_documented_commands.py",
    "tests/infrastructure/test_bundling.py",
    "tests/e2e/",
    "tests/integration/test_execution_faults.py",
    "tests/integration/test_cli_",
    "tests/infrastructure/test_compliance.py",
)


def scope_of(nodeid: str) -> str:
    if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist's own group suffix, where it works
        return nodeid.split("@")[-1]
    module = nodeid.split("::", 1)[0]
    if module in GROUPS:
        return GROUPS[module]
    if module in WHOLE_MODULES:
        return module
    return nodeid


def _rank(scope: str) -> int:
    for rank, prefix in enumerate(SLOW_FIRST):
        if scope.startswith(prefix):
            return rank
    return len(SLOW_FIRST)


class SuiteScheduling(LoadGroupScheduling):
    """``loadgroup`` with the scopes above, slowest units first."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)

    def schedule(self) -> None:
        if self.collection is None and self._check_nodes_have_same_collection():
            # the base class fills ``workqueue`` (a dict) from the collection: a scope already
            # there keeps its place, so entering them first, slowest first, sets the order
            collection = next(iter(self.registered_collections.values()))
            scopes = dict.fromkeys(self._split_scope(nodeid) for nodeid in collection)
            for scope in sorted(scopes, key=_rank):  # stable: collection order within a rank
                self.workqueue[scope] = {}
            self.config.option.loadscopereorder = False
        super().schedule()

"""Go-live use cases: stage starts, SLO gates, promotion and the rollback compensation steps.

The Step Functions machine (``infra/constructs/golive.py``) sequences them; each step is
idempotent, so a retried task never records a second transition or cancels twice.

State table layout:

* pk ``golive``, sk ``run#<run_id>`` — the run: status, stage, versions, parameters, reason;
* pk ``golive``, sk ``run#<run_id>#transition#<iso time>#<to stage>`` — one item per transition
  (from, to, reason, actor, at);
* pk ``golive``, sk ``active`` — the stage trading runs under (mode, risk-budget fraction);
* pk ``golive``, sk ``alias#live`` — the live version ("alias"): set by promotion, reverted by
  rollback, with the version it replaced. This record is the model of a version alias: no Lambda
  alias or SageMaker endpoint is switched by it (none exists yet);
* pk ``slo``, sk ``<iso time>#<run_id>#<stage>`` — every SLO evaluation with its reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.golive import (
    GOLIVE_ACTOR,
    GoLiveParams,
    RunStatus,
    Stage,
    StageTransition,
    rollback_engaged,
    stage_policy,
)
from cryptosmarttrader.domain.killswitch import writable_reason
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus
from cryptosmarttrader.domain.slo import (
    SloThresholds,
    evaluate_slo,
    samples_from_series,
    slo_queries,
)
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.settings import EnvSettings

if TYPE_CHECKING:  # ports.py imports polars and numpy, which the go-live bundle does not ship
    from cryptosmarttrader.ports import (
        KillSwitchControl,
        KillSwitchState,
        MetricReader,
        Notifier,
        OrderLedger,
        StateStore,
        VenueSweep,
    )

__all__ = [
    "ACTOR",
    "GOLIVE_PK",
    "SLO_PK",
    "Failure",
    "GoLiveError",
    "GoLiveRunner",
    "GoLiveService",
    "GoLiveSettings",
    "SloEvaluation",
    "SloService",
    "canary_reason",
    "failure_from",
    "staging_reason",
]

GOLIVE_PK: Final = "golive"
SLO_PK: Final = "slo"
ACTIVE_SK: Final = "active"
ALIAS_SK: Final = "alias#live"
ACTOR: Final = GOLIVE_ACTOR


class GoLiveError(RuntimeError):
    """A go-live step cannot proceed (unknown run, wrong stage...). Fails the task → rollback."""


class GoLiveSettings(EnvSettings):
    """Go-live settings (env prefix ``CST_GOLIVE_``); thresholds default to the product SLOs."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ENV_PREFIX: ClassVar[str] = "CST_GOLIVE_"

    topic_arn: str | None = None
    # the deployed go-live machine (stack output GoLiveStateMachineArn): `cst golive start`
    # starts an execution of it instead of the local runner
    state_machine_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[\w-]+$"
    )
    metrics_namespace: str = Field(default="CryptoSmartTrader", min_length=1)
    min_uptime: float = 0.995
    max_p95_latency_ms: float = 1000.0
    max_tracking_error_bps: float = 20.0
    availability_objective: float = 0.995
    max_burn_rate: float = 1.0

    def thresholds(self) -> SloThresholds:
        return SloThresholds(
            min_uptime=self.min_uptime,
            max_p95_latency_ms=self.max_p95_latency_ms,
            max_tracking_error_bps=self.max_tracking_error_bps,
            availability_objective=self.availability_objective,
            max_burn_rate=self.max_burn_rate,
        )


class Failure(BaseModel):
    """Why a run is rolled back: a Step Functions Catch result, or an SLO breach / operator."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    error: str = Field(alias="Error", min_length=1)
    cause: str = Field(default="", alias="Cause")

    @property
    def reason(self) -> str:
        cause = " ".join(self.cause.split())
        return f"{self.error}: {cause[:900]}" if cause else self.error


def _run_sk(run_id: str) -> str:
    return f"run#{run_id}"


@dataclass
class GoLiveService:
    store: StateStore
    orders: OrderLedger
    kill_switch: KillSwitchControl
    clock: Clock
    notifier: Notifier | None = None
    actor: str = ACTOR
    # builds the execution service's sweep on the deployment's venue (testnet / live) for the
    # rollback's order step; None: the paper venue, whose cancel is acknowledged at once
    venue_sweep: Callable[[], VenueSweep] | None = None

    # ------------------------------------------------------------------ records

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self.store.get(GOLIVE_PK, _run_sk(run_id))

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        items = [
            i for i in self.store.query(GOLIVE_PK) if "#transition#" not in str(i.get("sk", ""))
        ]
        runs = [i for i in items if str(i.get("sk", "")).startswith("run#")]
        return sorted(runs, key=lambda r: str(r.get("started_at", "")), reverse=True)

    def transitions(self, run_id: str) -> list[dict[str, Any]]:
        prefix = f"{_run_sk(run_id)}#transition#"
        return [i for i in self.store.query(GOLIVE_PK) if str(i.get("sk", "")).startswith(prefix)]

    def live_version(self) -> dict[str, Any] | None:
        return self.store.get(GOLIVE_PK, ALIAS_SK)

    def active(self) -> dict[str, Any] | None:
        return self.store.get(GOLIVE_PK, ACTIVE_SK)

    def _record(self, run: dict[str, Any], to_stage: Stage, reason: str) -> dict[str, Any]:
        """Write the transition item, then the run item (the log survives a crash between)."""
        now = self.clock.now()
        from_stage = Stage(run["stage"])
        move = StageTransition(run["run_id"], from_stage, to_stage, reason, now, self.actor)
        self.store.put(
            GOLIVE_PK,
            f"{_run_sk(move.run_id)}#transition#{now.isoformat()}#{to_stage.value}",
            {
                "run_id": move.run_id,
                "from_stage": from_stage.value,
                "to_stage": to_stage.value,
                "reason": move.reason,
                "actor": move.actor,
                "at": now,
            },
        )
        status = {
            Stage.PRODUCTION: RunStatus.SUCCEEDED,
            Stage.ROLLED_BACK: RunStatus.ROLLED_BACK,
        }.get(to_stage, RunStatus.RUNNING)
        updated = {**run, "stage": to_stage.value, "status": status.value, "reason": reason}
        updated["updated_at"] = now
        updated.pop("sk", None)
        self.store.put(GOLIVE_PK, _run_sk(move.run_id), updated)
        return updated

    def _activate(self, params: GoLiveParams, stage: Stage) -> dict[str, Any]:
        policy = stage_policy(stage, params)
        active = {
            "run_id": params.run_id,
            "stage": stage.value,
            "version": params.version,
            "trading_mode": policy.trading_mode,
            "risk_budget_fraction": policy.risk_budget_fraction,
            "updated_at": self.clock.now(),
        }
        self.store.put(GOLIVE_PK, ACTIVE_SK, active)
        return active

    # ------------------------------------------------------------------ forward steps

    def start_stage(self, params: GoLiveParams, stage: Stage, reason: str) -> dict[str, Any]:
        """Enter ``staging`` (creating the run) or ``canary``. A repeated call is a no-op."""
        if stage not in (Stage.STAGING, Stage.CANARY):
            raise GoLiveError(f"start_stage enters staging or canary, not {stage}")
        run = self.run(params.run_id)
        if run is None:
            if stage is not Stage.STAGING:
                raise GoLiveError(f"run {params.run_id} does not exist: start staging first")
            now = self.clock.now()
            run = {
                "run_id": params.run_id,
                "stage": Stage.PENDING.value,
                "status": RunStatus.RUNNING.value,
                "version": params.version,
                "previous_version": params.previous_version,
                "params": params.model_dump(mode="json"),
                "requested_by": params.requested_by,
                "started_at": now,
            }
        if run["stage"] == stage.value:
            self._activate(params, stage)
            return run
        run = self._record(run, stage, reason)
        self._activate(params, stage)
        return run

    def promote(self, params: GoLiveParams, reason: str) -> dict[str, Any]:
        """canary → production; the live version becomes ``params.version``."""
        run = self.run(params.run_id)
        if run is None:
            raise GoLiveError(f"run {params.run_id} does not exist")
        if run["stage"] != Stage.PRODUCTION.value:
            run = self._record(run, Stage.PRODUCTION, reason)
        self.store.put(
            GOLIVE_PK,
            ALIAS_SK,
            {
                "version": params.version,
                "replaced_version": params.previous_version,
                "run_id": params.run_id,
                "reason": reason,
                "updated_at": self.clock.now(),
            },
        )
        self._activate(params, Stage.PRODUCTION)
        return run

    # ------------------------------------------------------------------ compensation

    def _rollback_reason(self, run_id: str, failure: Failure) -> str:
        # printable and short enough for the kill-switch value (domain.killswitch)
        return writable_reason(
            f"go-live {run_id} rollback: {failure.reason}", f"go-live {run_id} rollback"
        )

    def engage_kill_switch(self, run_id: str, failure: Failure) -> dict[str, Any]:
        """The kill-switch on with the rollback's reason, unless it already holds, known, for
        another reason (an operator's, the RiskGuard's, an alarm's): that one is re-affirmed as
        it is (its reason and actor kept, as the alarm function does), so its sweeps still
        cancel every order, stops included, as whoever engaged it asked. The rollback's value
        carries its marker (``golive_rollback``: the run id), which tells every later sweep to
        keep the held positions' protective sells (``domain.golive.rollback_engaged``)."""
        before = self.kill_switch.status()
        if before.on and before.known and not self._rollback_of(run_id, before):
            try:
                state = self.kill_switch.set(True, before.reason, before.actor)
                return {"on": state.on, "reason": state.reason, "kept": True}
            except DomainError:  # stored text this version refuses: the rollback's replaces it
                pass
        state = self.kill_switch.set(
            True, self._rollback_reason(run_id, failure), self.actor, golive_rollback=run_id
        )
        return {"on": state.on, "reason": state.reason, "golive_rollback": run_id}

    def _rollback_of(self, run_id: str, switch: KillSwitchState) -> bool:
        """Whether ``switch`` holds for a go-live rollback, or for this run's own rollback as
        this writer stored it before the value carried a marker (same actor, the reason its
        :meth:`_rollback_reason` wrote for ``run_id``): running the rollback again writes the
        marker (docs/golive.md, "The rollback's kill-switch marker")."""
        if rollback_engaged(
            golive_rollback=switch.golive_rollback, actor=switch.actor, reason=switch.reason
        ):
            return True
        return (
            switch.golive_rollback is None
            and switch.actor == self.actor
            and (
                switch.reason == f"go-live {run_id} rollback"
                or switch.reason.startswith(f"go-live {run_id} rollback: ")
            )
        )

    def _keeps_protection(self) -> bool:
        """Whether the rollback's sweep keeps held positions' protective sells: not while the
        switch holds, known, for another reason (:meth:`engage_kill_switch` kept it)."""
        kill = self.kill_switch.status()
        return not (kill.on and kill.known) or rollback_engaged(
            golive_rollback=kill.golive_rollback, actor=kill.actor, reason=kill.reason
        )

    def cancel_open_orders(self, run_id: str, failure: Failure) -> dict[str, Any]:
        """The rollback's order step: every open order cancelled, the protective sells of held
        positions kept (on a venue that places them).

        On a testnet / live venue (``venue_sweep``) the cancels go through the execution
        service's sweep (:meth:`_cancel_at_venue`). On the paper venue, whose cancel is
        acknowledged at once, every non-terminal order → CANCELED in the order store with the
        reason (SUBMITTED via CANCEL_PENDING); it places no protective stop, so none is kept.
        An order sent to a testnet / live venue is never cancelled in the store alone: it is
        left as stored and named in ``in_doubt`` (a rollback run without that venue).
        A stored order that cannot be read (its status unknown) is not moved: it is named in
        ``unreadable`` (key, coin, why) for an operator, and every other order is cancelled.
        """
        if self.venue_sweep is not None:
            return self._cancel_at_venue(run_id, failure, self.venue_sweep())
        reason = self._rollback_reason(run_id, failure)
        now = self.clock.now()
        canceled: list[str] = []
        skipped: list[str] = []
        in_doubt: dict[str, str] = {}
        facts = OrderFacts(cancel_reason=reason, canceled_by=self.actor)
        ledger = self.orders.all_orders()
        for recorded in ledger:
            status = recorded.status
            if status in TERMINAL_STATUSES:
                continue
            venue = recorded.order.mode
            if venue != "paper" and status is not OrderStatus.NEW:
                # sent to a real venue: only the venue's cancel ends it, never this store
                in_doubt[recorded.key] = (
                    f"{status}: sent to the {venue} venue, which this rollback cannot reach "
                    "(its venue is paper): left as stored; the execution function's kill-switch "
                    "sweep cancels it at the venue"
                )
                continue
            path = [status]
            if status is OrderStatus.SUBMITTED:
                path.append(OrderStatus.CANCEL_PENDING)
            path.append(OrderStatus.CANCELED)
            ok = all(
                self.orders.update_status(recorded.key, StatusChange(a, b, now, facts))
                for a, b in pairwise(path)
            )
            (canceled if ok else skipped).append(recorded.key)
        return {
            "venue": "paper",
            "canceled": canceled,
            "kept": {},
            "in_doubt": in_doubt,
            "skipped_changed_concurrently": skipped,
            "unreadable": [bad.describe() for bad in ledger.unreadable],
        }

    def _cancel_at_venue(self, run_id: str, failure: Failure, sweep: VenueSweep) -> dict[str, Any]:
        """The kill-switch sweep's path on the venue, keeping every held position's protective
        sells: each open order's cancel is sent to the venue and the ledger moves only on the
        venue's answer. The result names each open order's outcome, read back by key:

        * ``canceled``: the venue confirmed the cancel (or the order never reached it);
        * ``kept``: a protective sell of a held position, left resting (key → why);
        * ``unprotected``: a position held with no protective sell on the venue (a stop that
          failed or was not placed yet, an entry filled just before the cancel): nothing is
          sent while the switch holds, so an operator decides (symbol → why);
        * ``in_doubt``: the venue's answer is lost or not seen yet (key → status and why):
          left ``CANCEL_PENDING`` (or as it was, when the sweep did not reach it), never
          recorded CANCELED; the execution function's reconcile settles it on what the venue
          shows (the kill-switch being on, it sends the cancel again);
        * ``finished``: filled (or otherwise ended) on the venue before its cancel: booked by
          the reconcile like any fill (key → status);
        * ``unreadable``: a stored order that cannot be read, for an operator.
        """
        reason = self._rollback_reason(run_id, failure)
        ledger = self.orders.all_orders()
        open_keys = [o.key for o in ledger if o.status not in TERMINAL_STATUSES]
        report = sweep.cancel_open_orders(reason, keep_protection=self._keeps_protection())
        canceled: list[str] = []
        in_doubt: dict[str, str] = {}
        finished: dict[str, str] = {}
        for key in open_keys:
            if key in report.kept:
                continue
            found = self.orders.find(key)
            status = None if found is None else found.status
            if status is OrderStatus.CANCELED:
                canceled.append(key)
            elif status in TERMINAL_STATUSES:
                finished[key] = str(status)
            elif status is OrderStatus.CANCEL_PENDING:
                in_doubt[key] = (
                    "CANCEL_PENDING: the venue has not confirmed the cancel (its answer lost or "
                    "the order not shown yet); the reconcile settles it on the venue's view"
                )
            else:
                in_doubt[key] = (
                    f"{'not found' if status is None else status}: not cancelled by this sweep "
                    "(moved concurrently, or not in the open-orders index yet); the kill-switch "
                    "sweep of the next cycle cancels it"
                )
        return {
            "venue": sweep.mode,
            "canceled": canceled,
            "kept": dict(sorted(report.kept.items())),
            "unprotected": dict(sorted(report.unprotected.items())),
            "in_doubt": in_doubt,
            "finished": finished,
            "unreadable": [bad.describe() for bad in ledger.unreadable],
        }

    def revert_version(self, run_id: str, failure: Failure) -> dict[str, Any]:
        """Point the live alias back at the run's previous version and record it."""
        run = self.run(run_id)
        reason = self._rollback_reason(run_id, failure)
        if run is None:
            return {"reverted": False, "reason": f"run {run_id} never started; nothing to revert"}
        current = self.live_version()
        reverted_from = str(current["version"]) if current else None
        self.store.put(
            GOLIVE_PK,
            ALIAS_SK,
            {
                "version": run["previous_version"],
                "replaced_version": reverted_from,
                "reverted_version": run["version"],
                "run_id": run_id,
                "reason": reason,
                "updated_at": self.clock.now(),
            },
        )
        return {
            "reverted": True,
            "live_version": run["previous_version"],
            "reverted_version": run["version"],
        }

    def record_rollback(
        self, run_id: str, failure: Failure, steps: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The run ends ``rolled_back`` with its reason; trading is halted in ``active``."""
        reason = self._rollback_reason(run_id, failure)
        run = self.run(run_id)
        if run is None:
            # The run failed before it was created (invalid input): record it so it is visible.
            run = {
                "run_id": run_id,
                "stage": Stage.PENDING.value,
                "status": RunStatus.RUNNING.value,
                "started_at": self.clock.now(),
            }
        failed_stage = str(run["stage"])
        if run["stage"] != Stage.ROLLED_BACK.value:
            run = self._record(run, Stage.ROLLED_BACK, reason)
        extra = {
            "failed_stage": run.get("failed_stage", failed_stage),
            "rollback_steps": dict(steps or {}),
        }
        run = {**run, **extra}
        run.pop("sk", None)
        self.store.put(GOLIVE_PK, _run_sk(run_id), run)
        self.store.put(
            GOLIVE_PK,
            ACTIVE_SK,
            {
                "run_id": run_id,
                "stage": Stage.ROLLED_BACK.value,
                "version": run.get("previous_version"),
                "trading_mode": "halted",
                "risk_budget_fraction": 0.0,
                "updated_at": self.clock.now(),
            },
        )
        return run

    def rollback(self, run_id: str, failure: Failure) -> dict[str, Any]:
        """Every compensation step in order (the operator's manual rollback), then notify."""
        steps: dict[str, Any] = {
            "kill_switch": self.engage_kill_switch(run_id, failure),
            "orders": self.cancel_open_orders(run_id, failure),
            "version": self.revert_version(run_id, failure),
        }
        if self.notifier is not None:
            steps["notification"] = self.notifier.publish(
                f"CryptoSmartTrader go-live {run_id} rolled back",
                {"run_id": run_id, "error": failure.error, "cause": failure.cause},
            )
        return self.record_rollback(run_id, failure, steps)


# --------------------------------------------------------------------------- SLO gate


class SloEvaluation(BaseModel):
    """One gate evaluation, as stored (pk ``slo``) and returned to the state machine."""

    model_config = ConfigDict(frozen=True)

    evaluation_id: str
    run_id: str
    stage: Stage
    passed: bool
    summary: str
    reasons: list[str]
    results: list[dict[str, Any]]
    window_start: datetime
    window_end: datetime
    evaluated_at: datetime


@dataclass
class SloService:
    reader: MetricReader
    store: StateStore
    clock: Clock
    thresholds: SloThresholds = field(default_factory=SloThresholds)

    def evaluate(self, params: GoLiveParams, stage: Stage) -> SloEvaluation:
        window = params.window_seconds(stage)
        end = self.clock.now()
        start = end - timedelta(seconds=window)
        series = self.reader.read(
            slo_queries(stage.value, window, params.slo_period_seconds), start, end
        )
        decision = evaluate_slo(samples_from_series(series), self.thresholds)
        evaluation = SloEvaluation(
            evaluation_id=f"{end.isoformat()}#{params.run_id}#{stage.value}",
            run_id=params.run_id,
            stage=stage,
            passed=decision.passed,
            summary=decision.summary,
            reasons=list(decision.reasons),
            results=[
                {
                    "name": r.name.value,
                    "value": r.value,
                    "objective": r.objective,
                    "passed": r.passed,
                    "reason": r.reason,
                }
                for r in decision.results
            ],
            window_start=start,
            window_end=end,
            evaluated_at=end,
        )
        self.store.put(
            SLO_PK,
            evaluation.evaluation_id,
            evaluation.model_dump(mode="json", exclude={"evaluation_id"}),
        )
        return evaluation

    def evaluations(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Stored evaluations, newest first (optionally of one run)."""
        items = self.store.query(SLO_PK)
        if run_id is not None:
            items = [i for i in items if i.get("run_id") == run_id]
        return sorted(items, key=lambda i: str(i.get("sk", "")), reverse=True)


def failure_from(data: Mapping[str, Any] | None, default_error: str) -> Failure:
    """A :class:`Failure` from a Catch result or ``{"error", "cause"}``; never empty."""
    if not data:
        return Failure.model_validate({"Error": default_error})
    return Failure.model_validate(
        {
            "Error": data.get("Error") or data.get("error") or default_error,
            "Cause": data.get("Cause") or data.get("cause") or "",
        }
    )


def staging_reason(params: GoLiveParams) -> str:
    return f"version {params.version} enters paper trading for {params.staging_seconds} s"


def canary_reason(params: GoLiveParams) -> str:
    return (
        f"staging SLO gate passed; canary at {params.canary_risk_fraction:.2%} of the risk "
        f"budget for {params.canary_seconds} s"
    )


PROMOTE_REASON: Final = "canary SLO gate passed: promoted to production"


STAGING_GATE: Final = "staging_gate"
CANARY_GATE: Final = "canary_gate"
DONE: Final = "done"
_STEP_NAMES: Final = {STAGING_GATE: "staging SLO gate", CANARY_GATE: "canary SLO gate"}


def _step_sk(run_id: str) -> str:
    return f"step#{run_id}"  # not ``run#…``: GoLiveService.runs() lists only runs


@dataclass
class GoLiveRunner:
    """The state machine's sequence as persisted steps, for the local AWS (``cst golive``).

    :meth:`start` enters staging and records the next step (the staging SLO gate) with the time
    it is due, then returns: the wait of the machine's ``Wait`` states is a stored due time, not
    a sleeping process. :meth:`advance` runs every step that is due (``cst golive status`` calls
    it), with the same services, order and rollback as the machine (a breach or any failed step
    rolls back). State: pk ``golive``, sk ``step#<run_id>`` → ``{"next", "due_at", "params"}``.
    One advancing process at a time is assumed (the local state lock serializes them).
    """

    golive: GoLiveService
    slo: SloService

    @property
    def _store(self) -> StateStore:
        return self.golive.store

    def _schedule(self, params: GoLiveParams, step: str, seconds: int) -> None:
        due = self.golive.clock.now() + timedelta(seconds=seconds)
        self._store.put(
            GOLIVE_PK,
            _step_sk(params.run_id),
            {"next": step, "due_at": due, "params": params.model_dump(mode="json")},
        )

    def _finish(self, run_id: str) -> None:
        self._store.put(GOLIVE_PK, _step_sk(run_id), {"next": DONE})

    def start(self, params: GoLiveParams) -> None:
        """Enter staging and schedule its gate (steps already due run at once)."""
        try:
            self.golive.start_stage(params, Stage.STAGING, staging_reason(params))
        except Exception as exc:  # noqa: BLE001 - mirrors the machine's Catch on States.ALL
            self.golive.rollback(params.run_id, _failure(exc))
            self._finish(params.run_id)
            return
        self._schedule(params, STAGING_GATE, params.staging_seconds)
        self.advance(params.run_id)

    def next_step(self, run_id: str) -> dict[str, Any] | None:
        """The pending step of a run (``step``, ``due_at``), or None when it has ended."""
        item = self._store.get(GOLIVE_PK, _step_sk(run_id))
        if item is None or item.get("next") == DONE:
            return None
        return {"step": _STEP_NAMES.get(str(item["next"]), item["next"]), "due_at": item["due_at"]}

    def advance(self, run_id: str) -> dict[str, Any] | None:
        """Run every step of ``run_id`` that is due now; return the pending one, if any."""
        while True:
            item = self._store.get(GOLIVE_PK, _step_sk(run_id))
            if item is None or item.get("next") == DONE:
                return None
            run = self.golive.run(run_id)
            if run is None or run.get("status") != RunStatus.RUNNING.value:
                self._finish(run_id)  # rolled back (e.g. by an operator) or gone: nothing to do
                return None
            due = item["due_at"]
            due_at = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))
            if self.golive.clock.now() < due_at:
                return self.next_step(run_id)
            params = GoLiveParams.model_validate(item["params"])
            try:
                self._step(params, str(item["next"]))
            except Exception as exc:  # noqa: BLE001 - the machine's Catch on States.ALL
                # rollback first: if it fails too, the step stays pending and the next
                # advance tries again (each compensation step is idempotent)
                self.golive.rollback(run_id, _failure(exc))
                self._finish(run_id)

    def _step(self, params: GoLiveParams, step: str) -> None:
        stage = Stage.STAGING if step == STAGING_GATE else Stage.CANARY
        evaluation = self.slo.evaluate(params, stage)
        if not evaluation.passed:
            error = "StagingSloBreach" if stage is Stage.STAGING else "CanarySloBreach"
            breach = Failure.model_validate({"Error": error, "Cause": evaluation.summary})
            self.golive.rollback(params.run_id, breach)
            self._finish(params.run_id)
            return
        if stage is Stage.STAGING:
            self.golive.start_stage(params, Stage.CANARY, canary_reason(params))
            self._schedule(params, CANARY_GATE, params.canary_seconds)
            return
        self.golive.promote(params, PROMOTE_REASON)
        self._finish(params.run_id)


def _failure(exc: Exception) -> Failure:
    return Failure.model_validate({"Error": type(exc).__name__, "Cause": str(exc)})

"""Chaos suite: scenarios that inject a real fault into the running pipeline and check recovery.

The scenarios are written against the :class:`ChaosLab` protocol (local infrastructure plus fault
injectors, implemented by ``faults.py``), so this module stays free of boto3, ccxt and moto.
Each returns a :class:`ScenarioResult`:

* ``passed`` — every invariant of the scenario held (listed in ``details["checks"]``);
* ``recovery_seconds`` — wall time from the first injected fault to the first complete,
  correct run after it (see each scenario for what "complete" means);
* ``orders_lost`` / ``orders_duplicated`` — decisions the RiskGuard approved that have no order
  after recovery / orders created more than once for one decision. Both must be 0. The network
  and upstream scenarios exercise ingestion, which places no order: they report 0 and check
  the candle analogues (``candles_missing``, ``candles_duplicated``) instead.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.orders import RecordOutcome
from cryptosmarttrader.domain.risk import RiskLevel, RiskObservation
from cryptosmarttrader.domain.types import Action
from cryptosmarttrader.ports import Progress
from cryptosmarttrader.services.execution import ReconcileReport
from cryptosmarttrader.services.ingest import IngestReport, IngestService
from cryptosmarttrader.services.progress import no_progress
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.services.scan import Analysis, ScanReport, ScanService

__all__ = [
    "SCENARIOS",
    "ChaosLab",
    "ChaosReport",
    "SafetyBench",
    "ScenarioResult",
    "audit_orders",
    "run_suite",
]

SCENARIOS: tuple[str, ...] = (
    "network",
    "upstream",
    "load",
    "database",
    "memory",
    "disk",
    "execution",
    "input",
    "killswitch",
)
CHAOS_STEP = "chaos scenarios"  # progress step (cryptosmarttrader/services/progress.py)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


class ScenarioResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    passed: bool
    recovery_seconds: float | None = Field(default=None, ge=0)
    orders_lost: int = Field(ge=0)
    orders_duplicated: int = Field(ge=0)
    seconds: float = Field(ge=0)
    details: dict[str, Any]

    @model_validator(mode="after")
    def _no_pass_with_lost_or_duplicated_orders(self) -> ScenarioResult:
        if self.passed and (self.orders_lost or self.orders_duplicated):
            raise ValueError("a scenario that lost or duplicated an order cannot pass")
        return self


class ChaosReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: bool
    seconds: float
    scenarios: list[ScenarioResult]


@dataclass
class Checks:
    """Named invariants of one scenario; all must hold for it to pass."""

    results: dict[str, bool] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool) -> bool:
        self.results[name] = bool(ok)
        return bool(ok)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(self.results.values())

    def failed(self) -> list[str]:
        return [name for name, ok in self.results.items() if not ok]


# --------------------------------------------------------------------------------------------
# What a scenario needs from the lab (implemented in faults.py)
# --------------------------------------------------------------------------------------------


class StoreFaults(Protocol):
    """Faults on one DynamoDB client (botocore event hooks)."""

    throttled: int
    refused: int

    def throttle(self, sends: int) -> None: ...

    def start_outage(self) -> None: ...

    def outage_from(self, operation: str, table: str) -> None: ...

    def end_outage(self) -> None: ...

    def recovery_seconds(self) -> float | None: ...


class ChildOutcome(Protocol):
    """A resource-limited child process run."""

    @property
    def ok(self) -> bool: ...

    @property
    def seconds(self) -> float: ...

    @property
    def stdout(self) -> str: ...

    @property
    def peak_kib(self) -> dict[str, int]: ...

    def outcome(self) -> str: ...


class ScanBench(Protocol):
    """The scan pipeline on its own fresh tables of the lab's local AWS."""

    @property
    def orders_table(self) -> str: ...

    def service(self) -> tuple[ScanService, StoreFaults]:
        """A new service with its own clients (a new Lambda execution environment)."""
        ...

    def order_ids(self) -> list[str]:
        """Client order IDs of every stored order (one item per ID: the table's key)."""
        ...

    def run_handler(self, event: Mapping[str, Any], memory_mb: int) -> ChildOutcome:
        """The scan Lambda handler in a child process under ``RLIMIT_AS = memory_mb``."""
        ...


class ExchangeFaults(Protocol):
    """The loopback exchange: ``script(fault, ..., then=fault)`` with ExchangeFault names."""

    def script(self, *faults: str, then: str = "ok") -> None: ...

    def heal(self) -> None: ...

    @property
    def requests(self) -> int: ...

    def served(self) -> list[str]:
        """The answer given to every request so far, in order."""
        ...


class IngestBench(Protocol):
    """Ingestion from a real ccxt client talking to the loopback exchange, into the lake."""

    @property
    def exchange(self) -> ExchangeFaults: ...

    @property
    def exchange_id(self) -> str: ...

    @property
    def timeframe(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def breaker_cooldown(self) -> timedelta: ...

    def service(self) -> IngestService: ...

    def advance(self, delta: timedelta) -> None:
        """Move the injected clock (new bars close; a breaker cool-down passes)."""
        ...

    def lake(self) -> pl.DataFrame:
        """Every candle of the symbol in the lake (``OHLCV_SCHEMA``)."""
        ...

    def expected(self) -> pl.DataFrame:
        """The served candles that have closed by the clock and are inside the ingest window."""
        ...

    def watermark(self) -> int | None: ...


class SnapshotView(Protocol):
    @property
    def valid(self) -> bool: ...

    @property
    def digest(self) -> str | None: ...

    @property
    def order_ids(self) -> list[str]: ...

    @property
    def size(self) -> int: ...


class DiskBench(Protocol):
    """``cst scan`` in child processes over one embedded-AWS state directory (snapshot)."""

    def cst_scan(self, asof: str, top: int, file_size_bytes: int | None = None) -> ChildOutcome: ...

    def snapshot(self) -> SnapshotView: ...

    def stray_files(self) -> list[str]:
        """Temp files left in the state directory."""
        ...


class SafetyBench(Protocol):
    """The kill-switch and the risk state of fresh resources, through the functions' own code."""

    def switch(self) -> Mapping[str, Any]:
        """The stored kill-switch value (raw JSON: on, reason, actor, at)."""
        ...

    def deliver_alarm(self, exhaust: str | None = None) -> Mapping[str, Any]:
        """A critical alarm's Lambda action to the alarm function (its real handler);
        ``exhaust``: an SSM operation failing through every retry once on its own client.
        Raises what the handler raises."""
        ...

    def risk(self, exhaust: str | None = None) -> RiskStateService:
        """The execution function's risk state service, on new clients (``exhaust`` as above)."""
        ...

    def advance(self, delta: timedelta) -> None: ...

    def delete_risk_state(self) -> None:
        """Delete the risk state's ``current`` item (the transition log stays)."""
        ...


class ExecutionBench(Protocol):
    """The hourly execution cycle on fresh tables, over the recorded bars with the lake's
    ingest lag, after one scan as of ``asof`` (implemented in faults.py)."""

    asof: datetime

    def scan(self) -> ScanReport: ...

    def cycle(
        self, at: datetime, fault: str | None = None, hidden_for: timedelta | None = None
    ) -> Any:
        """One cycle at ``at``; ``fault``: ssm_throttle, lookup_errors (the first open order),
        unreadable_acks, late_orders (shown ``hidden_for`` after placement)."""
        ...

    def reconcile_late(self, at: datetime) -> ReconcileReport: ...

    def kill_switch(self, on: bool, at: datetime) -> None: ...

    def emergency(self, at: datetime) -> None: ...

    def orders(self) -> list[dict[str, Any]]: ...

    def positions(self) -> dict[str, float]: ...

    @property
    def venue_creates(self) -> int: ...

    @property
    def venue_cancels(self) -> list[str]: ...


class InputBench(Protocol):
    """A copy of the recorded data dir (links to the real files) whose files can be damaged,
    with the scan and the ingest running over it on fresh local resources."""

    def damage_price(self, coin: str, day_ms: int, value: float) -> None:
        """Replace the coin's recorded price on ``day_ms`` by ``value`` (e.g. infinity)."""
        ...

    def damage_candles(self, pair: str, timeframe: str, fault: str, at_ms: int) -> None:
        """Damage the pair's candle file: ``nan_close`` (the bar before ``at_ms``), ``empty``
        (no rows), ``off_grid`` (every bar 30 minutes late: a time-zone error)."""
        ...

    def scan(self, asof: str, top_n: int) -> ScanReport:
        """`cst scan`'s analysis and orders over the (damaged) copy, on fresh tables."""
        ...

    def order_ids(self) -> list[str]: ...

    def ingest(self, pairs: Sequence[str], timeframe: str, at_ms: int) -> IngestReport:
        """The recorded replay of ``pairs`` into a fresh lake as of ``at_ms``."""
        ...

    def lake_days(self, pair: str, timeframe: str) -> int: ...


class ChaosLab(Protocol):
    asof: str
    top_n: int
    lambda_memory_mb: int
    load_threads: int
    load_bursts: int

    def analysis(self) -> Analysis: ...

    def scan_bench(self, name: str) -> ScanBench: ...

    def ingest_bench(self, name: str) -> AbstractContextManager[IngestBench]: ...

    def disk_bench(self, name: str) -> AbstractContextManager[DiskBench]: ...

    def safety_bench(self, name: str) -> SafetyBench: ...
    def execution_bench(self, name: str) -> ExecutionBench: ...
    def input_bench(self, name: str) -> AbstractContextManager[InputBench]: ...


# --------------------------------------------------------------------------------------------
# Order accounting
# --------------------------------------------------------------------------------------------


def approved_decisions(report: ScanReport) -> set[str]:
    """Client order IDs of the BUY decisions that reached an order (created or already there)."""
    return {
        r.client_order_id
        for r in report.rows
        if r.action is Action.BUY and r.client_order_id is not None
    }


def created_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """IDs of the rows whose run created the order (JSON rows of a scan report)."""
    return [
        str(r["client_order_id"])
        for r in rows
        if r.get("client_order_id") and r.get("order_outcome") == RecordOutcome.CREATED.value
    ]


def audit_orders(
    expected: Collection[str], stored: Collection[str], created: Iterable[str]
) -> tuple[int, int, dict[str, Any]]:
    """(lost, duplicated, details): expected decisions without an order, creations beyond one
    per decision, and stored orders nobody expected."""
    counts = Counter(created)
    lost = sorted(set(expected) - set(stored))
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    unexpected = sorted(set(stored) - set(expected))
    return (
        len(lost),
        duplicated,
        {
            "expected_orders": len(set(expected)),
            "stored_orders": len(set(stored)),
            "lost_ids": lost,
            "duplicated_ids": sorted(k for k, n in counts.items() if n > 1),
            "unexpected_ids": unexpected,
        },
    )


def _rows(report: ScanReport) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in report.rows]


def _try_execute(service: ScanService, analysis: Analysis) -> tuple[ScanReport | None, str]:
    try:
        return service.execute(analysis), "completed"
    except Exception as exc:  # noqa: BLE001 - a scenario records how the run failed
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def control_decisions(lab: ChaosLab) -> set[str]:
    """The orders a fault-free scan places on empty tables (every scenario's expectation)."""
    service, _ = lab.scan_bench("control").service()
    return approved_decisions(service.execute(lab.analysis()))


def scenario_load(lab: ChaosLab, expected: set[str]) -> ScenarioResult:
    """Bursts of concurrent scans of one decision set (bounded threads): exactly-once orders."""
    started = time.monotonic()
    bench = lab.scan_bench("load")
    analysis = lab.analysis()
    services = [bench.service()[0] for _ in range(lab.load_threads)]
    checks = Checks()
    reports: list[ScanReport] = []
    errors: list[str] = []
    burst_seconds: list[float] = []
    with ThreadPoolExecutor(max_workers=lab.load_threads, thread_name_prefix="chaos-load") as pool:
        for _ in range(lab.load_bursts):
            t0 = time.monotonic()
            for report, outcome in pool.map(lambda s: _try_execute(s, analysis), services):
                if report is None:
                    errors.append(outcome)
                else:
                    reports.append(report)
            burst_seconds.append(round(time.monotonic() - t0, 3))
    created = [cid for r in reports for cid in created_ids(_rows(r))]
    lost, duplicated, audit = audit_orders(expected, bench.order_ids(), created)
    checks.check("every concurrent scan completed", not errors)
    checks.check("each decision created exactly once", sorted(created) == sorted(expected))
    checks.check(
        "every scan saw every decision", all(approved_decisions(r) == expected for r in reports)
    )
    checks.check("only decisions were recorded", set(bench.order_ids()) <= expected)
    return _result(
        "load",
        checks,
        started,
        max(burst_seconds, default=0.0),
        lost,
        duplicated,
        {
            **audit,
            "scans": len(reports) + len(errors),
            "threads": lab.load_threads,
            "bursts": lab.load_bursts,
            "burst_seconds": burst_seconds,
            "errors": errors[:5],
        },
    )


def scenario_database(lab: ChaosLab, expected: set[str]) -> ScenarioResult:
    """DynamoDB throttling (absorbed by the SDK's retries) and outages (the invocation fails,
    its retry after the outage completes) — before the run, and in the middle of an order."""
    started = time.monotonic()
    analysis = lab.analysis()
    checks = Checks()
    phases: dict[str, Any] = {}
    total_lost = total_dup = 0
    recovery: list[float] = []

    # Throttling: two throttled sends, retried by botocore (adaptive mode).
    bench = lab.scan_bench("db-throttle")
    service, faults = bench.service()
    faults.throttle(2)
    report, outcome = _try_execute(service, analysis)
    created = created_ids(_rows(report)) if report else []
    lost, dup, audit = audit_orders(expected, bench.order_ids(), created)
    checks.check("throttling: the run completed through SDK retries", report is not None)
    checks.check("throttling: the faults were injected", faults.throttled == 2)
    phases["throttling"] = {
        "outcome": outcome,
        "throttled_sends": faults.throttled,
        "recovery_seconds": faults.recovery_seconds(),
        **audit,
    }
    total_lost, total_dup = total_lost + lost, total_dup + dup
    if faults.recovery_seconds() is not None:
        recovery.append(float(faults.recovery_seconds() or 0.0))

    for phase in ("outage_before_run", "outage_mid_order"):
        bench = lab.scan_bench(f"db-{phase.replace('_', '-')}")
        service, faults = bench.service()
        t0 = time.monotonic()
        if phase == "outage_before_run":
            faults.start_outage()
        else:  # the endpoint goes down at the first order write
            faults.outage_from("PutItem", bench.orders_table)
        failed, first = _try_execute(service, analysis)
        faults.end_outage()
        after_fault = len(bench.order_ids())
        # The async invocation's retry: a new execution environment after the outage.
        retry_service, _ = bench.service()
        report, second = _try_execute(retry_service, analysis)
        elapsed = round(time.monotonic() - t0, 3)
        created = [
            *(created_ids(_rows(failed)) if failed else []),
            *(created_ids(_rows(report)) if report else []),
        ]
        lost, dup, audit = audit_orders(expected, bench.order_ids(), created)
        checks.check(f"{phase}: the faulted invocation failed", failed is None)
        checks.check(f"{phase}: the retried invocation completed", report is not None)
        checks.check(f"{phase}: no decision lost or doubled", lost == 0 and dup == 0)
        phases[phase] = {
            "first_invocation": first,
            "retry": second,
            "refused_calls": faults.refused,
            "orders_after_fault": after_fault,
            "recovery_seconds": elapsed,
            **audit,
        }
        total_lost, total_dup = total_lost + lost, total_dup + dup
        recovery.append(elapsed)
    return _result(
        "database", checks, started, max(recovery, default=0.0), total_lost, total_dup, phases
    )


def scenario_memory(lab: ChaosLab, expected: set[str]) -> ScenarioResult:
    """The scan Lambda handler under RLIMIT_AS: starved (must fail with nothing half-written),
    then at the configured Lambda memory (must complete every decision exactly once)."""
    started = time.monotonic()
    checks = Checks()
    bench = lab.scan_bench("memory")
    event = {"top_n": lab.top_n, "asof": lab.asof}
    starved_mb = lab.lambda_memory_mb * 3 // 4
    starved = bench.run_handler(event, starved_mb)
    after_starved = len(bench.order_ids())
    t0 = time.monotonic()
    full = bench.run_handler(event, lab.lambda_memory_mb)
    recovered = round(time.monotonic() - t0, 3)
    lost, dup, audit = audit_orders(
        expected, bench.order_ids(), created_ids(_handler_rows(full.stdout))
    )
    checks.check("starved run failed", not starved.ok)
    checks.check("no order outside the decisions", set(bench.order_ids()) <= expected)
    checks.check("run at the configured memory completed", full.ok)
    checks.check("no decision lost or doubled", lost == 0 and dup == 0)
    return _result(
        "memory",
        checks,
        started,
        recovered,
        lost,
        dup,
        {
            "lambda_memory_mb": lab.lambda_memory_mb,
            "starved": {
                "rlimit_as_mb": starved_mb,
                "outcome": starved.outcome(),
                "seconds": starved.seconds,
                "orders_written": after_starved,
                "peak_kib": starved.peak_kib,
            },
            "configured": {
                "rlimit_as_mb": lab.lambda_memory_mb,
                "outcome": full.outcome(),
                "seconds": full.seconds,
                "peak_kib": full.peak_kib,
            },
            **audit,
        },
    )


def _handler_rows(stdout: str) -> list[dict[str, Any]]:
    import json

    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("report"), dict):
            rows: list[dict[str, Any]] = data["report"].get("rows", [])
            return rows
    return []


def cli_scan_rows(stdout: str) -> list[dict[str, Any]]:
    """The decisions (``rows``) of one ``cst scan --json`` report; none when it printed none."""
    import json

    try:
        data = json.loads(stdout)
    except ValueError:
        return []
    rows = data.get("rows") if isinstance(data, dict) else None
    return rows if isinstance(rows, list) else []


def scenario_disk(lab: ChaosLab) -> ScenarioResult:
    """``cst scan`` whose writes fail with EFBIG (RLIMIT_FSIZE, TMPDIR in the state dir) while
    saving its state snapshot: the snapshot must stay the last good one, and a rerun recovers."""
    started = time.monotonic()
    checks = Checks()
    with lab.disk_bench("disk") as bench:
        baseline = bench.cst_scan(lab.asof, top=5)
        before = bench.snapshot()
        limit = before.size + 256
        faulted = bench.cst_scan(lab.asof, top=lab.top_n, file_size_bytes=limit)
        during = bench.snapshot()
        strays = bench.stray_files()
        t0 = time.monotonic()
        rerun = bench.cst_scan(lab.asof, top=lab.top_n)
        recovered = round(time.monotonic() - t0, 3)
        after = bench.snapshot()
    base_rows, rerun_rows = cli_scan_rows(baseline.stdout), cli_scan_rows(rerun.stdout)
    expected = {
        str(r["client_order_id"])
        for r in [*base_rows, *rerun_rows]
        if r.get("action") == "buy" and r.get("client_order_id")
    }
    created = [*created_ids(base_rows), *created_ids(rerun_rows)]
    lost, dup, audit = audit_orders(expected, after.order_ids, created)
    checks.check("baseline run completed", baseline.ok and before.valid)
    checks.check("run with a full disk failed", not faulted.ok)
    checks.check(
        "snapshot unchanged by the failed run", during.valid and during.digest == before.digest
    )
    checks.check("rerun completed", rerun.ok and after.valid)
    checks.check("no decision lost or doubled", lost == 0 and dup == 0 and bool(expected))
    if strays:
        checks.findings.append(f"the failed save left temp files behind: {strays}")
    return _result(
        "disk",
        checks,
        started,
        recovered,
        lost,
        dup,
        {
            "rlimit_fsize_bytes": limit,
            "baseline": baseline.outcome(),
            "faulted": faulted.outcome(),
            "rerun": rerun.outcome(),
            "snapshot_bytes": {
                "before": before.size,
                "after_failure": during.size,
                "after_rerun": after.size,
            },
            "stray_files": strays,
            **audit,
        },
    )


def _ingest(service: IngestService, bench: IngestBench) -> IngestReport:
    return service.run(bench.exchange_id, bench.timeframe, [bench.symbol])


def _lake_vs_expected(bench: IngestBench) -> dict[str, int]:
    lake, expected = bench.lake(), bench.expected()
    lake_ts, expected_ts = set(lake["ts"].to_list()), set(expected["ts"].to_list())
    joined = lake.join(expected, on="ts", suffix="_src")
    differing = joined.filter(
        (pl.col("open") != pl.col("open_src"))
        | (pl.col("high") != pl.col("high_src"))
        | (pl.col("low") != pl.col("low_src"))
        | (pl.col("close") != pl.col("close_src"))
        | (pl.col("volume") != pl.col("volume_src"))
    ).height
    return {
        "candles_expected": len(expected_ts),
        "candles_in_lake": lake.height,
        "candles_missing": len(expected_ts - lake_ts),
        "candles_unexpected": len(lake_ts - expected_ts),
        "candles_duplicated": lake.height - len(lake_ts),
        "candles_differing": differing,
    }


def _exchange_scenario(
    lab: ChaosLab,
    name: str,
    transient: Sequence[str],
    persistent: str,
    malformed: Sequence[str],
) -> ScenarioResult:
    """Shared shape of the network and upstream scenarios (see their docstrings)."""
    started = time.monotonic()
    checks = Checks()
    phases: dict[str, Any] = {}
    with lab.ingest_bench(name) as bench:
        service = bench.service()
        # 1. transient faults: absorbed by the adapter's retries within one run
        bench.exchange.script(*transient)
        t0 = time.monotonic()
        first = _ingest(service, bench)
        checks.check(
            "transient faults were served",
            bench.exchange.served()[: len(transient) + 1] == [*transient, "ok"],
        )
        transient_recovery = round(time.monotonic() - t0, 3)
        state = _lake_vs_expected(bench)
        checks.check(
            "transient faults absorbed by retries",
            first.outcomes[0].status == "ok" and first.breaker_state == "closed",
        )
        checks.check(
            "lake equals the source after transient faults",
            state["candles_missing"]
            == state["candles_unexpected"]
            == state["candles_differing"]
            == state["candles_duplicated"]
            == 0,
        )
        phases["transient"] = {
            "faults": list(transient),
            "report": first.outcomes[0].status,
            "seconds": transient_recovery,
            **state,
        }
        # 2. malformed answers: rejected with a reason, nothing written, watermark unmoved
        for fault in malformed:
            bench.advance(timedelta(hours=6))
            mark = bench.watermark()
            lake_rows = bench.lake().height
            bench.exchange.script(then=fault)
            served_before = bench.exchange.requests
            report = _ingest(service, bench)
            outcome = report.outcomes[0]
            checks.check(
                f"{fault}: the fault was served",
                fault in bench.exchange.served()[served_before:],
            )
            untouched = bench.lake().height == lake_rows and bench.watermark() == mark
            checks.check(f"{fault}: nothing written, watermark unmoved", untouched)
            checks.check(
                f"{fault}: breaker unaffected by a bad payload", report.breaker_state == "closed"
            )
            if outcome.status != "exchange_error":
                checks.findings.append(
                    f"{fault}: reported {outcome.status!r} instead of an exchange error: a "
                    "payload ccxt cannot parse reads as 'no new candles' (nothing was written)"
                )
            phases[fault] = {
                "status": outcome.status,
                "reason": outcome.reason[:200],
                "nothing_written": untouched,
            }
            bench.exchange.heal()
        # 3. persistent fault: the breaker opens and the exchange is left alone
        bench.advance(timedelta(hours=6))
        mark = bench.watermark()
        lake_rows = bench.lake().height
        bench.exchange.script(then=persistent)
        fault_started = time.monotonic()
        runs = [_ingest(service, bench) for _ in range(3)]
        requests_before_skip = bench.exchange.requests
        skipped = _ingest(service, bench)
        checks.check("breaker opened after consecutive failures", runs[-1].breaker_state == "open")
        checks.check(
            "open breaker skips the exchange",
            skipped.skipped_reason is not None and bench.exchange.requests == requests_before_skip,
        )
        checks.check(
            "nothing written while failing",
            bench.lake().height == lake_rows and bench.watermark() == mark,
        )
        # 4. heal; after the cool-down one trial fetch closes the breaker and catches up
        bench.exchange.heal()
        bench.advance(bench.breaker_cooldown + timedelta(seconds=1))
        healed = _ingest(service, bench)
        recovery = round(time.monotonic() - fault_started, 3)
        state = _lake_vs_expected(bench)
        checks.check(
            "recovered: breaker closed and candles ingested",
            healed.breaker_state == "closed" and healed.outcomes[0].status == "ok",
        )
        checks.check(
            "lake equals the source after recovery",
            state["candles_missing"]
            == state["candles_unexpected"]
            == state["candles_differing"]
            == state["candles_duplicated"]
            == 0,
        )
        phases["persistent"] = {
            "fault": persistent,
            "statuses": [r.outcomes[0].status for r in runs],
            "breaker_states": [r.breaker_state for r in runs],
            "skipped_reason": skipped.skipped_reason,
            "breaker_cooldown_seconds": bench.breaker_cooldown.total_seconds(),
            "after_recovery": state,
        }
        phases["exchange_requests"] = bench.exchange.requests
    return _result(name, checks, started, recovery, 0, 0, phases)


INPUT_FAULTS: Final = {"nan_close": "NAN", "empty": "EMPTY", "off_grid": "MISALIGNED"}
INPUT_PAIRS: Final = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT")  # first one left intact


def scenario_input(lab: ChaosLab) -> ScenarioResult:
    """Bad input while the pipeline runs: an infinite price in the best-ranked coin's file (it
    used to rank first with score NaN and print NaN), then damaged candle files under the
    ingest (a NaN close, an empty file, bars 30 minutes off the grid). Everything bad is
    rejected with its reason, the run goes on for the rest, no order is lost or doubled."""
    started = time.monotonic()
    checks = Checks()
    details: dict[str, Any] = {}
    with lab.input_bench("input") as bench:
        control = bench.scan(lab.asof, lab.top_n)
        scored = [r for r in control.rows if r.score is not None]
        if not scored:
            raise RuntimeError(f"the control scan as of {lab.asof} ranked no coin")
        coin = scored[0].symbol
        asof_ms = int(control.asof.timestamp() * 1000)
        expected = {
            r.client_order_id
            for r in control.rows
            if r.action is Action.BUY and r.client_order_id and r.symbol != coin
        }
    fault_started = time.monotonic()
    with lab.input_bench("input-damaged") as bench:
        bench.damage_price(coin, asof_ms - 86_400_000, float("inf"))
        report: ScanReport | None
        try:
            report, outcome = bench.scan(lab.asof, lab.top_n), "completed"
        except Exception as exc:  # noqa: BLE001 - the scenario records how the run failed
            report, outcome = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        recovery = round(time.monotonic() - fault_started, 3)
        checks.check("infinite price: the scan completed", report is not None)
        ranked = [r.symbol for r in report.rows] if report else []
        strict = report is not None and _strict_json(report.model_dump(mode="json"))
        checks.check(
            "infinite price: the coin is not ranked", report is not None and coin not in ranked
        )
        checks.check(
            "infinite price: rejected by the gate with a reason",
            report is not None and report.quality_totals.get("NON_FINITE", 0) >= 1,
        )
        checks.check("infinite price: the report is strict JSON", strict)
        created = created_ids(_rows(report)) if report else []
        lost, duplicated, audit = audit_orders(expected, bench.order_ids(), created)
        details["infinite_price"] = {
            "damaged_coin": coin,
            "outcome": outcome,
            "ranked": ranked,
            "quality_totals": report.quality_totals if report else {},
            **audit,
        }
    with lab.input_bench("input-candles") as bench:
        at_ms = asof_ms + 12 * 3_600_000
        intact, *damaged = INPUT_PAIRS
        for pair, fault in zip(damaged, INPUT_FAULTS, strict=True):
            bench.damage_candles(pair, "1h", fault, at_ms)
        ingest = bench.ingest(INPUT_PAIRS, "1h", at_ms)
        outcomes = {o.symbol: o for o in ingest.outcomes}
        ok = outcomes[intact]
        checks.check(
            "damaged candles: the intact pair is ingested", ok.status == "ok" and ok.ingested > 0
        )
        candle_details: dict[str, Any] = {
            "intact": {"pair": intact, "status": ok.status, "ingested": ok.ingested}
        }
        for pair, (fault, code) in zip(damaged, INPUT_FAULTS.items(), strict=True):
            out = outcomes[pair]
            days = bench.lake_days(pair, "1h")
            checks.check(
                f"{fault}: rejected with {code}, nothing written",
                out.status == "rejected" and code in out.rejected_codes and days == 0,
            )
            candle_details[fault] = {
                "pair": pair,
                "status": out.status,
                "codes": sorted(out.rejected_codes),
                "reason": out.reason[:200],
                "lake_days": days,
            }
        details["damaged_candles"] = candle_details
    return _result("input", checks, started, recovery, lost, duplicated, details)


def _strict_json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def scenario_network(lab: ChaosLab) -> ScenarioResult:
    """TCP resets and hangs past the client timeout between ccxt and the exchange."""
    return _exchange_scenario(
        lab, "network", transient=("reset", "hang", "reset"), persistent="reset", malformed=()
    )


def scenario_upstream(lab: ChaosLab) -> ScenarioResult:
    """Exchange 5xx and 429 answers, and malformed payloads (an invalid candle, a cut body)."""
    return _exchange_scenario(
        lab,
        "upstream",
        transient=("http_503", "http_429"),
        persistent="http_502",
        malformed=("negative_price", "truncated"),
    )


def _hm(bench: ExecutionBench, hours: int, minutes: int = 10) -> datetime:
    return bench.asof + timedelta(hours=hours, minutes=minutes)


def scenario_execution(lab: ChaosLab) -> ScenarioResult:
    """Faults on the execution path, each on fresh tables over the lake's real timing: a
    throttled kill-switch read, venue lookup errors during the kill-switch sweep, an
    acknowledgement that cannot be parsed, an order the venue shows only later, and an
    EMERGENCY flatten while the CLOSEs wait for their bar to reach the lake."""
    started = time.monotonic()
    checks = Checks()
    phases: dict[str, Any] = {}
    lost = duplicated = 0
    recovery: list[float] = []

    # 1. the kill-switch cannot be read: nothing is sent, nothing is destroyed
    bench = lab.execution_bench("exec-ssm")
    decided = {r.client_order_id for r in bench.scan().rows if r.order_status == "NEW"}
    blind = bench.cycle(_hm(bench, 1), "ssm_throttle")
    statuses = Counter(str(o["status"]) for o in bench.orders())
    checks.check("throttled switch: nothing sent", blind.dispatched == 0)
    checks.check("throttled switch: no decision cancelled", blind.cancelled_new == 0)
    t0 = time.monotonic()
    seen = bench.cycle(_hm(bench, 2))
    recovery.append(time.monotonic() - t0)
    checks.check("throttled switch: sent once readable", seen.dispatched > 0)
    lost += blind.cancelled_new
    phases["ssm_throttle"] = {"decisions": len(decided), "after_fault": dict(statuses),
                              "dispatched_after": seen.dispatched}  # fmt: skip

    # 2. the venue fails a lookup during the kill-switch sweep: every cancel still goes out
    bench = lab.execution_bench("exec-sweep")
    bench.scan()
    bench.cycle(_hm(bench, 1))
    live = sorted(str(o["client_order_id"]) for o in bench.orders() if o["status"] == "ACCEPTED")
    bench.kill_switch(True, _hm(bench, 1, 30))
    bench.cycle(_hm(bench, 1, 30), "lookup_errors")
    after = {str(o["client_order_id"]): str(o["status"]) for o in bench.orders()}
    checks.check("sweep: every cancel sent", sorted(bench.venue_cancels) == live and bool(live))
    checks.check(
        "sweep: one error holds one order",
        [c for c in live if after[c] != "CANCELED"] == live[:1],
    )
    t0 = time.monotonic()
    bench.cycle(_hm(bench, 1, 40))
    recovery.append(time.monotonic() - t0)
    final = {str(o["client_order_id"]): str(o["status"]) for o in bench.orders()}
    checks.check("sweep: the next sweep finishes it", all(final[c] == "CANCELED" for c in live))
    phases["lookup_errors"] = {"open_orders": len(live),
                               "after_sweep": dict(Counter(after[c] for c in live))}  # fmt: skip

    # 3. the venue's acknowledgement cannot be parsed: reconciled by client ID, not rejected
    bench = lab.execution_bench("exec-ack")
    bench.scan()
    bench.cycle(_hm(bench, 1), "unreadable_acks")
    sent = [o for o in bench.orders() if o["status"] not in {"NEW", "CANCELED"}]
    rejected = [o for o in sent if o["status"] == "REJECTED"]
    checks.check("unreadable ack: nothing recorded REJECTED", not rejected and bool(sent))
    filled = bench.cycle(_hm(bench, 3))
    checks.check("unreadable ack: the orders fill", len(filled.positions) == len(sent))
    lost += len(rejected)
    phases["unreadable_acks"] = {"sent": len(sent), "rejected": len(rejected)}

    # 4. the venue shows an order only after the grace period: tracked, never resent
    bench = lab.execution_bench("exec-late")
    bench.scan()
    bench.cycle(_hm(bench, 1), "late_orders", timedelta(minutes=50))
    submitted = [str(o["client_order_id"]) for o in bench.orders() if o["status"] == "SUBMITTED"]
    for minutes in (15, 30, 60, 125):
        bench.reconcile_late(_hm(bench, 1, 10 + minutes))
    late = {str(o["client_order_id"]): o for o in bench.orders()}
    checks.check("late order: never resent", bench.venue_creates == len(submitted))
    checks.check(
        "late order: its fill tracked",
        bool(submitted) and all(late[c]["status"] == "FILLED" for c in submitted),
    )
    positions = bench.positions()
    checks.check(
        "late order: each fill applied once",
        all(positions[str(late[c]["symbol"])] == float(late[c]["filled"]) for c in submitted),
    )
    duplicated += bench.venue_creates - len(submitted)
    lost += sum(late[c]["status"] == "EXPIRED" for c in submitted)
    phases["late_orders"] = {"orders": len(submitted),
                             "statuses": dict(Counter(str(late[c]["status"]) for c in submitted))}  # fmt: skip

    # 5. EMERGENCY flatten while the CLOSEs wait for the lake: one sell per position
    bench = lab.execution_bench("exec-flatten")
    bench.scan()
    for hour in (1, 2, 3):
        bench.cycle(_hm(bench, hour))
    held = {s: q for s, q in bench.positions().items() if q > 0}
    bench.emergency(_hm(bench, 3, 20))
    t0 = time.monotonic()
    flattened = [bench.cycle(_hm(bench, hour)).flattened for hour in (4, 5, 6, 7)]
    recovery.append(time.monotonic() - t0)
    sells = Counter(str(o["symbol"]) for o in bench.orders() if o["side"] == "sell")
    after_flatten = bench.positions()
    checks.check("flatten: positions were held", bool(held))
    checks.check("flatten: one sell per position", dict(sells) == dict.fromkeys(held, 1))
    checks.check("flatten: nothing short, all flat", all(q == 0 for q in after_flatten.values()))
    duplicated += sum(n - 1 for n in sells.values() if n > 1)
    phases["flatten_lake_lag"] = {"positions": len(held), "flattened_per_cycle": flattened,
                                  "sells": dict(sells)}  # fmt: skip
    return _result(
        "execution", checks, started, round(max(recovery, default=0.0), 3), lost, duplicated, phases
    )


def _result(
    name: str,
    checks: Checks,
    started: float,
    recovery: float | None,
    lost: int,
    duplicated: int,
    details: Mapping[str, Any],
) -> ScenarioResult:
    passed = checks.passed and lost == 0 and duplicated == 0
    return ScenarioResult(
        scenario=name,
        passed=passed,
        recovery_seconds=recovery,
        orders_lost=lost,
        orders_duplicated=duplicated,
        seconds=round(time.monotonic() - started, 3),
        details={
            "checks": checks.results,
            "failed_checks": checks.failed(),
            "findings": checks.findings,
            **details,
        },
    )


def _attempt(run: Callable[[], Any]) -> tuple[Any, str]:
    try:
        return run(), "completed"
    except Exception as exc:  # noqa: BLE001 - a scenario records how the invocation failed
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def scenario_killswitch(lab: ChaosLab) -> ScenarioResult:
    """Faults on the safety machinery itself, each on the path AWS runs:

    * a critical alarm while SSM throttles the alarm function's ``GetParameter`` (every retry):
      the switch must still be written on;
    * the same alarm while SSM throttles its ``PutParameter``: the invocation must fail (so
      Lambda retries it) and its retry must turn the switch on;
    * an escalation to SHUTDOWN while the execution function's switch write fails: the level
      must not be stored without the switch, and the next cycle must write both;
    * the risk state's ``current`` item deleted: the level must come back from the transition
      log (SHUTDOWN), and days of healthy metrics must not leave it.

    No order is placed: orders lost / duplicated are 0 by construction.
    """
    started = time.monotonic()
    checks = Checks()
    phases: dict[str, Any] = {}
    recovery: list[float] = []

    bench = lab.safety_bench("ks-alarm-read")
    t0 = time.monotonic()
    result, outcome = _attempt(lambda: bench.deliver_alarm(exhaust="GetParameter"))
    value = bench.switch()
    checks.check("alarm, read throttled: the invocation completed", result is not None)
    checks.check("alarm, read throttled: the switch is on", value.get("on") is True)
    recovery.append(round(time.monotonic() - t0, 3))
    phases["alarm_read_throttled"] = {
        "outcome": outcome,
        "action": (result or {}).get("results", [{}])[0].get("action"),
        "switch": {"on": value.get("on"), "actor": value.get("actor")},
    }

    bench = lab.safety_bench("ks-alarm-write")
    t0 = time.monotonic()
    failed, first = _attempt(lambda: bench.deliver_alarm(exhaust="PutParameter"))
    between = bench.switch().get("on")
    retried, second = _attempt(bench.deliver_alarm)
    value = bench.switch()
    checks.check(
        "alarm, write throttled: the invocation failed (Lambda retries it)", failed is None
    )
    checks.check(
        "alarm, write throttled: the retry completed and turned the switch on",
        retried is not None and value.get("on") is True,
    )
    recovery.append(round(time.monotonic() - t0, 3))
    phases["alarm_write_throttled"] = {
        "first_invocation": first,
        "switch_on_between": between,
        "retry": second,
        "switch": {"on": value.get("on"), "actor": value.get("actor")},
    }

    bench = lab.safety_bench("ks-escalation")
    bench.risk().observe(RiskObservation(Decimal("100000")))
    bench.advance(timedelta(hours=1))
    t0 = time.monotonic()
    failed, first = _attempt(
        lambda: bench.risk(exhaust="PutParameter").observe(RiskObservation(Decimal("80000")))
    )
    level_after_fault = bench.risk().load().level
    switch_after_fault = bench.switch().get("on")
    bench.advance(timedelta(hours=1))
    cycle, second = _attempt(lambda: bench.risk().observe(RiskObservation(Decimal("80000"))))
    value = bench.switch()
    level = bench.risk().load().level
    checks.check("escalation, switch write failed: the cycle failed", failed is None)
    checks.check(
        "escalation, switch write failed: no level stored without the switch",
        level_after_fault is RiskLevel.NORMAL and switch_after_fault is False,
    )
    checks.check(
        "escalation: the next cycle wrote the switch and SHUTDOWN",
        cycle is not None and value.get("on") is True and level is RiskLevel.SHUTDOWN,
    )
    recovery.append(round(time.monotonic() - t0, 3))
    phases["escalation_switch_write_failed"] = {
        "faulted_cycle": first,
        "level_after_fault": level_after_fault.name,
        "switch_on_after_fault": switch_after_fault,
        "next_cycle": second,
        "level": level.name,
        "switch": {"on": value.get("on"), "actor": value.get("actor")},
    }

    t0 = time.monotonic()
    bench.delete_risk_state()
    rebuilt = bench.risk().load()
    bench.advance(timedelta(days=3))
    healthy, outcome = _attempt(lambda: bench.risk().observe(RiskObservation(Decimal("100000"))))
    after = healthy[0].level if healthy else None
    checks.check(
        "deleted risk item: the level came back from the log", rebuilt.level is RiskLevel.SHUTDOWN
    )
    checks.check(
        "deleted risk item: healthy days did not leave SHUTDOWN", after is RiskLevel.SHUTDOWN
    )
    recovery.append(round(time.monotonic() - t0, 3))
    phases["risk_state_item_deleted"] = {
        "rebuilt_level": rebuilt.level.name,
        "rebuilt_reason": rebuilt.reason[:200],
        "after_three_healthy_days": None if after is None else after.name,
        "outcome": outcome,
    }
    return _result("killswitch", checks, started, max(recovery, default=0.0), 0, 0, phases)


# --------------------------------------------------------------------------------------------
# Suite
# --------------------------------------------------------------------------------------------


def run_suite(
    lab: ChaosLab,
    names: Sequence[str] = SCENARIOS,
    clock: Callable[[], float] = time.monotonic,
    progress: Progress = no_progress,
) -> ChaosReport:
    """Run the named scenarios in order. A scenario that raises is a failed result naming the
    error; the others still run."""
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown chaos scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    started = clock()
    needs_orders = {"load", "database", "memory"} & set(names)
    expected = control_decisions(lab) if needs_orders else set()
    runners: dict[str, Callable[[], ScenarioResult]] = {
        "network": lambda: scenario_network(lab),
        "upstream": lambda: scenario_upstream(lab),
        "load": lambda: scenario_load(lab, expected),
        "database": lambda: scenario_database(lab, expected),
        "memory": lambda: scenario_memory(lab, expected),
        "disk": lambda: scenario_disk(lab),
        "execution": lambda: scenario_execution(lab),
        "input": lambda: scenario_input(lab),
        "killswitch": lambda: scenario_killswitch(lab),
    }
    results = []
    for done, name in enumerate(names):
        progress(CHAOS_STEP, done, len(names))
        results.append(_guarded(name, runners[name], clock))
    progress(CHAOS_STEP, len(names), len(names))
    return ChaosReport(
        passed=all(r.passed for r in results),
        seconds=round(clock() - started, 3),
        scenarios=results,
    )


def _guarded(
    name: str, run: Callable[[], ScenarioResult], clock: Callable[[], float]
) -> ScenarioResult:
    started = clock()
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported as this scenario's failure, not hidden
        return ScenarioResult(
            scenario=name,
            passed=False,
            recovery_seconds=None,
            orders_lost=0,
            orders_duplicated=0,
            seconds=round(clock() - started, 3),
            details={"error": f"{type(exc).__name__}: {exc}"},
        )


def iter_lines(report: ChaosReport) -> Iterator[str]:
    """One human line per scenario (the CLI's table rows)."""
    for r in report.scenarios:
        status = "PASS" if r.passed else "FAIL"
        yield f"{status} {r.scenario}: recovery {r.recovery_seconds}s"

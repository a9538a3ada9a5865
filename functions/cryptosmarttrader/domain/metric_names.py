"""The metric catalogue: every CloudWatch (EMF) metric the system emits or is designed to emit.

One place for names, units, dimensions and producers, used by the services (``metric_names.ORDERS_CREATED.name``),
the alarms and dashboards (``infra/constructs/observability.py``) and ``docs/observability.md``.
``producer`` names the module(s) that emit the metric today (comma-separated when several do);
``None`` means the producing component does not exist yet, and the alarms on such a metric treat
missing data as "not breaching" until it does. Powertools adds the ``service`` dimension (the
function's ``POWERTOOLS_SERVICE_NAME``) to every metric except the go-live SLIs (family ``slo``,
``service`` None): those carry exactly one dimension, ``Stage``, because the SLO gate asks
CloudWatch for ``{Stage=<stage>}`` and CloudWatch matches the whole dimension set.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cryptosmarttrader.domain import slo

__all__ = ["CATALOGUE", "NAMESPACE", "SLIS", "Family", "MetricSpec", "Unit", "catalogue"]

NAMESPACE: Final = "CryptoSmartTrader"


class Unit(StrEnum):
    """The CloudWatch units used here (values are the EMF unit strings)."""

    COUNT = "Count"
    SECONDS = "Seconds"
    MILLISECONDS = "Milliseconds"
    PERCENT = "Percent"
    NONE = "None"


class Family(StrEnum):
    DATA = "data"
    AGENTS = "agents"
    ENSEMBLE = "ensemble"
    ML = "ml"
    RISK = "risk"
    EXECUTION = "execution"
    SYSTEM = "system"
    SLO = "slo"


# Service names (POWERTOOLS_SERVICE_NAME) of the producing functions.
INGEST: Final = "cst-ingest"
SCAN: Final = "cst-scan"
EXECUTION: Final = "cst-execution"
API: Final = "cst-api"
ALARM_KILLSWITCH: Final = "cst-alarm-killswitch"
MODEL_DRIFT: Final = "cst-model-drift"
HEALTH_PROBE: Final = "cst-health-probe"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: Unit
    family: Family
    description: str
    service: str | None  # None: a stage-wide SLI, no ``service`` dimension
    dimensions: tuple[str, ...] = ()  # besides ``service``
    producer: str | None = None  # module(s) emitting it today; None = not produced yet

    @property
    def producers(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.producer.split(",")) if self.producer else ()

    @property
    def is_sli(self) -> bool:
        """Published under ``Stage`` only, for the go-live SLO gate."""
        return self.service is None


# data
CANDLES_INGESTED = MetricSpec(
    "CandlesIngested",
    Unit.COUNT,
    Family.DATA,
    "Closed candles that passed the quality gate and reached the lake, per run.",
    INGEST,
    ("exchange", "timeframe"),
    "services/ingest.py",
)
CANDLES_REJECTED = MetricSpec(
    "CandlesRejected",
    Unit.COUNT,
    Family.DATA,
    "Candles refused by the quality gate, per rejection code (never filled or repaired).",
    INGEST,
    ("exchange", "code"),
    "services/ingest.py",
)
QUALITY_WARNINGS = MetricSpec(
    "QualityWarnings",
    Unit.COUNT,
    Family.DATA,
    "Warning-severity quality findings (data kept), per code.",
    INGEST,
    ("exchange", "code"),
    "services/ingest.py",
)
DATA_STALENESS = MetricSpec(
    "DataStaleness",
    Unit.SECONDS,
    Family.DATA,
    "Age of the newest closed candle held, worst series of the run.",
    INGEST,
    ("exchange", "timeframe"),
    "services/ingest.py",
)
INGEST_LATENCY = MetricSpec(
    "IngestLatency",
    Unit.MILLISECONDS,
    Family.DATA,
    "Wall time of one ingest run.",
    INGEST,
    ("exchange", "timeframe"),
    "services/ingest.py",
)
INGEST_SKIPPED = MetricSpec(
    "IngestSkipped",
    Unit.COUNT,
    Family.DATA,
    "Symbols skipped because the exchange circuit breaker is open.",
    INGEST,
    ("exchange", "timeframe"),
    "services/ingest.py",
)
LAKE_OBJECTS_WRITTEN = MetricSpec(
    "LakeObjectsWritten",
    Unit.COUNT,
    Family.DATA,
    "Parquet partitions written or merged, per run.",
    INGEST,
    ("exchange", "timeframe"),
    "services/ingest.py",
)
MARKET_CAPS_INGESTED = MetricSpec(
    "MarketCapsIngested",
    Unit.COUNT,
    Family.DATA,
    "Daily CoinGecko market caps that passed the gate and reached the lake, per run.",
    INGEST,
    ("exchange",),
    "services/market_caps.py",
)
MARKET_CAPS_REJECTED = MetricSpec(
    "MarketCapsRejected",
    Unit.COUNT,
    Family.DATA,
    "Market caps refused (missing, non-positive, stale, malformed...), per code; never filled.",
    INGEST,
    ("exchange", "code"),
    "services/market_caps.py",
)
MARKET_CAPS_BACKFILLED = MetricSpec(
    "MarketCapsBackfilled",
    Unit.COUNT,
    Family.DATA,
    "Daily market caps of a coin's history (CoinGecko market_chart) that passed the gate and "
    "reached the lake the first time the coin was seen, per run.",
    INGEST,
    ("exchange",),
    "services/market_caps.py",
)
MARKET_CAP_PAIRS_UNMAPPED = MetricSpec(
    "MarketCapPairsUnmapped",
    Unit.COUNT,
    Family.DATA,
    "Exchange pairs without an explicit CoinGecko coin (unknown or ambiguous ticker), per run.",
    INGEST,
    ("exchange",),
    "services/market_caps.py",
)
UNIVERSE_SIZE = MetricSpec(
    "UniverseSize",
    Unit.COUNT,
    Family.DATA,
    "Coins considered by a scan; emitted once per completed scan (the scan heartbeat).",
    SCAN,
    (),
    "services/scan.py",
)
EXCLUDED_BY_QUALITY = MetricSpec(
    "ExcludedByQuality",
    Unit.COUNT,
    Family.DATA,
    "Coins excluded from a scan by an error-severity quality finding.",
    SCAN,
    (),
    "services/scan.py",
)
# agents
AGENT_VOTES = MetricSpec(
    "AgentVotes",
    Unit.COUNT,
    Family.AGENTS,
    "Votes cast by the agents of a scan (one per agent and coin).",
    SCAN,
    ("agent",),
    producer="services/scan.py",
)
AGENT_ABSTENTIONS = MetricSpec(
    "AgentAbstentions",
    Unit.COUNT,
    Family.AGENTS,
    "Coins on which the technical agent abstained (insufficient or unusable history).",
    SCAN,
    (),
    "services/scan.py",
)
AGENT_CONFIDENCE = MetricSpec(
    "AgentConfidence",
    Unit.NONE,
    Family.AGENTS,
    "Mean confidence (0-1) of the non-abstaining votes of a scan.",
    SCAN,
    ("agent",),
    producer="services/scan.py",
)
# ensemble
GATED_DECISIONS = MetricSpec(
    "GatedDecisions",
    Unit.COUNT,
    Family.ENSEMBLE,
    "Ensemble decisions at or above the confidence gate (0.8) per scan.",
    SCAN,
    producer="services/scan.py",
)
# ml (model drift checks)
MODEL_FEATURE_PSI_MAX = MetricSpec(
    "ModelFeaturePsiMax",
    Unit.NONE,
    Family.ML,
    "Largest population stability index over the model's features (serving vs training window).",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
MODEL_FEATURE_KS_MAX = MetricSpec(
    "ModelFeatureKsMax",
    Unit.NONE,
    Family.ML,
    "Largest Kolmogorov-Smirnov statistic over the model's features.",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
MODEL_FEATURE_DRIFT_SHARE = MetricSpec(
    "ModelFeatureDriftShare",
    Unit.NONE,
    Family.ML,
    "Share of features flagged as drifted (0-1).",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
MODEL_PREDICTION_PSI = MetricSpec(
    "ModelPredictionPsi",
    Unit.NONE,
    Family.ML,
    "PSI of the predicted probabilities, serving vs reference.",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
MODEL_PREDICTION_KS = MetricSpec(
    "ModelPredictionKs",
    Unit.NONE,
    Family.ML,
    "KS statistic of the predicted probabilities.",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
MODEL_CALIBRATION_DECAY = MetricSpec(
    "ModelCalibrationDecay",
    Unit.NONE,
    Family.ML,
    "Calibration error increase versus the registered model.",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
MODEL_DRIFT_ALARM = MetricSpec(
    "ModelDriftAlarm",
    Unit.COUNT,
    Family.ML,
    "1 when a drift check raised an alarm that blocks promotion, else 0.",
    MODEL_DRIFT,
    ("ModelGroup",),
    producer="services/model_lifecycle.py",
)
# risk
RISK_LEVEL = MetricSpec(
    "RiskLevel",
    Unit.NONE,
    Family.RISK,
    "RiskGuard level after each execution cycle: 0 NORMAL, 1 CONSERVATIVE, 2 DEFENSIVE, "
    "3 EMERGENCY, 4 SHUTDOWN.",
    EXECUTION,
    producer="services/trading_cycle.py",
)
GROSS_EXPOSURE = MetricSpec(
    "GrossExposure",
    Unit.PERCENT,
    Family.RISK,
    "Gross value of the positions at their last closed bar, percent of equity.",
    EXECUTION,
    producer="services/trading_cycle.py",
)
DAILY_PNL = MetricSpec(
    "DailyPnl",
    Unit.PERCENT,
    Family.RISK,
    "Equity change since the UTC day start, percent (negative = loss).",
    EXECUTION,
    producer="services/trading_cycle.py",
)
EQUITY = MetricSpec(
    "Equity",
    Unit.NONE,
    Family.RISK,
    "Account equity in USD: cash from every fill (fees included) plus positions at the last "
    "closed bar. Not emitted while a position has no price.",
    EXECUTION,
    producer="services/trading_cycle.py",
)
DRAWDOWN = MetricSpec(
    "Drawdown",
    Unit.PERCENT,
    Family.RISK,
    "Equity below its peak, percent.",
    EXECUTION,
    producer="services/trading_cycle.py",
)
# execution
ORDERS_CREATED = MetricSpec(
    "OrdersCreated",
    Unit.COUNT,
    Family.EXECUTION,
    "New paper orders recorded by a scan (exactly once per decision).",
    SCAN,
    (),
    "services/scan.py",
)
ORDERS_SENT = MetricSpec(
    "OrdersSent",
    Unit.COUNT,
    Family.EXECUTION,
    "Orders submitted to an exchange (paper or live).",
    EXECUTION,
    producer="services/execution.py",
)
ORDERS_FILLED = MetricSpec(
    "OrdersFilled",
    Unit.COUNT,
    Family.EXECUTION,
    "Orders reported filled by the exchange or by reconciliation (once per order).",
    EXECUTION,
    producer="services/execution.py",
)
ORDERS_REJECTED_BY_EXCHANGE = MetricSpec(
    "OrdersRejectedByExchange",
    Unit.COUNT,
    Family.EXECUTION,
    "Orders the exchange refused (insufficient funds, invalid order...).",
    EXECUTION,
    producer="services/execution.py",
)
ORDERS_REJECTED_BY_RISK = MetricSpec(
    "OrdersRejectedByRisk",
    Unit.COUNT,
    Family.EXECUTION,
    "Order intents refused by the RiskGuard, per rule.",
    EXECUTION,
    ("rule",),
    producer="services/execution.py",
)
DUPLICATE_ORDERS_PREVENTED = MetricSpec(
    "DuplicateOrdersPrevented",
    Unit.COUNT,
    Family.EXECUTION,
    "Repeated decisions suppressed by the client order id (the orders table's conditional insert).",
    SCAN,
    (),
    "services/scan.py",
)
SLIPPAGE = MetricSpec(
    "SlippageBps",
    Unit.NONE,
    Family.EXECUTION,
    "Average fill price versus the decision's reference price, basis points (adverse "
    "positive), once per filled order.",
    EXECUTION,
    producer="services/execution.py",
)
ORDER_LATENCY = MetricSpec(
    "OrderLatency",
    Unit.MILLISECONDS,
    Family.EXECUTION,
    "Order submission to the exchange's acknowledgement (the create_order round trip).",
    EXECUTION,
    producer="services/execution.py",
)
ORDERS_RECONCILED = MetricSpec(
    "OrdersReconciled",
    Unit.COUNT,
    Family.EXECUTION,
    "Orders (entries, closes and protective stops) whose state was recovered from the exchange "
    "by client order id after a timeout, an unreadable answer or a rate-limit refusal.",
    EXECUTION,
    producer="services/execution.py",
)
ORDERS_CANCELLED_BY_KILL_SWITCH = MetricSpec(
    "OrdersCancelledByKillSwitch",
    Unit.COUNT,
    Family.EXECUTION,
    "Open orders cancelled because the kill-switch was turned on.",
    EXECUTION,
    producer="services/execution.py",
)
OVERSELL_REFUSED = MetricSpec(
    "OversellRefused",
    Unit.COUNT,
    Family.EXECUTION,
    "Sells refused or cut at dispatch because they would take a spot position below zero, and "
    "sell fills beyond the holding (not booked as a short). Never expected: alarmed.",
    EXECUTION,
    producer="services/execution.py",
)
POSITION_EXIT_ERRORS = MetricSpec(
    "PositionExitErrors",
    Unit.COUNT,
    Family.EXECUTION,
    "Positions whose exit (the exit rule's close, the EMERGENCY flatten) or protective order "
    "step failed with an error in the execution cycle: logged with the reason, the other "
    "positions went on.",
    EXECUTION,
    producer="services/execution.py",
)
BOOK_RECORDS_UNREADABLE = MetricSpec(
    "BookRecordsUnreadable",
    Unit.COUNT,
    Family.EXECUTION,
    "Stored orders or positions the execution cycle could not read (an attribute missing or "
    "out of its domain), counted at each read of the book (the finished orders out of the "
    "open-orders index, which only the account valuation reads, once per cycle): each logged "
    "with its key, coin and reason and left as stored. Until it is repaired the trading "
    "cycle's equity is unknown (an order's: its cash too), so the RiskGuard holds DEFENSIVE "
    "and refuses every entry, on every coin; exits and stops of the other coins go on. Alarmed "
    "(notify only); `cst book check` names the records. Never expected.",
    EXECUTION,
    producer="services/execution.py, services/trading_cycle.py",
)
SCAN_EXIT_ERRORS = MetricSpec(
    "ScanExitErrors",
    Unit.COUNT,
    Family.EXECUTION,
    "Positions whose exit row the daily scan could not resolve (its close cannot be resolved): "
    "logged with the reason and said on the row, the other positions and the scan went on.",
    SCAN,
    producer="services/scan.py",
)
PROTECTIVE_STOPS_PLACED = MetricSpec(
    "ProtectiveStopsPlaced",
    Unit.COUNT,
    Family.EXECUTION,
    "Protective stop orders placed on the venue (one per position state; testnet / live).",
    EXECUTION,
    producer="services/execution.py",
)
PROTECTIVE_STOPS_CANCELLED = MetricSpec(
    "ProtectiveStopsCancelled",
    Unit.COUNT,
    Family.EXECUTION,
    "Protective stops cancelled on the venue: before a close, a resize or by the kill-switch.",
    EXECUTION,
    producer="services/execution.py",
)
PROTECTIVE_STOPS_TRIGGERED = MetricSpec(
    "ProtectiveStopsTriggered",
    Unit.COUNT,
    Family.EXECUTION,
    "Protective stops the venue filled (the price crossed the stop), booked from its trades.",
    EXECUTION,
    producer="services/execution.py",
)
TAKE_PROFITS_PLACED = MetricSpec(
    "TakeProfitsPlaced",
    Unit.COUNT,
    Family.EXECUTION,
    "Take-profit sells placed on the venue with the stop as one OCO order list (Binance; one "
    "per position state).",
    EXECUTION,
    producer="services/execution.py",
)
TAKE_PROFITS_TRIGGERED = MetricSpec(
    "TakeProfitsTriggered",
    Unit.COUNT,
    Family.EXECUTION,
    "Take-profit legs the venue filled (the price reached the take-profit; the venue expired "
    "the stop), booked from its trades.",
    EXECUTION,
    producer="services/execution.py",
)
BALANCE_DRIFT = MetricSpec(
    "BalanceDrift",
    Unit.COUNT,
    Family.EXECUTION,
    "Assets the venue account holds less of than the positions ledger, beyond the tolerance, "
    "at the cycle's balance reconciliation (testnet / live). Moves the RiskGuard to DEFENSIVE; "
    "alarmed.",
    EXECUTION,
    producer="services/trading_cycle.py",
)
EXCHANGE_ERRORS = MetricSpec(
    "ExchangeErrors",
    Unit.COUNT,
    Family.EXECUTION,
    "Failed exchange calls (ingest: per exchange and retryable/fatal kind).",
    INGEST,
    ("exchange", "kind"),
    "services/ingest.py",
)
# system
REJECTED_EVENTS = MetricSpec(
    "RejectedEvents",
    Unit.COUNT,
    Family.SYSTEM,
    "Malformed Lambda events refused before any side effect.",
    SCAN,
    (),
    "handlers/_common.py",
)
INGEST_RUNS = MetricSpec(
    "IngestRuns",
    Unit.COUNT,
    Family.SYSTEM,
    "Completed ingest invocations (the ingest heartbeat).",
    INGEST,
    (),
    "handlers/ingest.py",
)
COLD_START = MetricSpec(
    "ColdStart",
    Unit.COUNT,
    Family.SYSTEM,
    "New Lambda execution environments (Powertools capture_cold_start_metric).",
    API,
    ("function_name",),
    "handlers/api.py",
)
API_REQUESTS = MetricSpec(
    "ApiRequests",
    Unit.COUNT,
    Family.SYSTEM,
    "API requests handled, per route and status class (2xx/4xx/5xx).",
    API,
    ("route", "status"),
    "handlers/api.py",
)
API_LATENCY = MetricSpec(
    "ApiLatency",
    Unit.MILLISECONDS,
    Family.SYSTEM,
    "Handler time per API request, per route (the SLO's latency indicator).",
    API,
    ("route",),
    "handlers/api.py",
)
KILL_SWITCH_ENGAGED = MetricSpec(
    "KillSwitchEngaged",
    Unit.COUNT,
    Family.SYSTEM,
    "Kill-switch turned on by a critical alarm.",
    ALARM_KILLSWITCH,
    (),
    "handlers/alarm_killswitch.py",
)
VENUE_KEYS_REFUSED = MetricSpec(
    "VenueKeysRefused",
    Unit.COUNT,
    Family.SYSTEM,
    "Execution cycles that abstained because the live account's trading key may withdraw or "
    "transfer, cannot trade spot, or its permissions could not be read (Binance "
    "apiRestrictions). Never expected: alarm on it.",
    EXECUTION,
    (),
    "handlers/execute.py",
)
READ_ONLY_KEYS_REFUSED = MetricSpec(
    "ReadOnlyKeysRefused",
    Unit.COUNT,
    Family.SYSTEM,
    "Withdrawals runs that did not use the read-only keys because they may trade, withdraw or "
    "transfer, or their permissions could not be read (the run's status says why). Never "
    "expected: alarm on it.",
    INGEST,
    (),
    "handlers/ingest.py",
)
# slo: the go-live SLIs (domain/slo.py reads them per stage), dimensioned by Stage only
PROBE_SUCCESS = MetricSpec(
    slo.PROBE_SUCCESS,
    Unit.COUNT,
    Family.SLO,
    "1 per scheduled deep health probe (DynamoDB, S3, SSM) that found every AWS dependency "
    "answering, else 0; the uptime SLI's numerator.",
    None,
    (slo.STAGE_DIMENSION,),
    "services/health.py",
)
PROBE_FAILURE = MetricSpec(
    slo.PROBE_FAILURE,
    Unit.COUNT,
    Family.SLO,
    "1 per deep health probe that found an AWS dependency failing (or could not run), else 0; "
    "the failing component is named in the probe's log.",
    None,
    (slo.STAGE_DIMENSION,),
    "services/health.py",
)
DECISION_LATENCY = MetricSpec(
    slo.DECISION_LATENCY,
    Unit.MILLISECONDS,
    Family.SLO,
    "Time of one scan run's decisions, from the market data in hand to the last paper order "
    "recorded (quality gate, agents, ensemble, RiskGuard, order writes); the p95 latency SLI.",
    None,
    (slo.STAGE_DIMENSION,),
    "services/scan.py",
)
REQUESTS = MetricSpec(
    slo.REQUESTS,
    Unit.COUNT,
    Family.SLO,
    "Work the stage was asked to do: each API request and each ingest, scan, execution and "
    "drift invocation (handlers/_common.count_invocation); the burn rate's denominator.",
    None,
    (slo.STAGE_DIMENSION,),
    "handlers/api.py, handlers/_common.py",
)
ERRORS = MetricSpec(
    slo.ERRORS,
    Unit.COUNT,
    Family.SLO,
    "Server-side failures among the requests: API responses >= 500 and scheduled runs that "
    "could not do their job and raised (client errors such as 4xx or a rejected event are not "
    "errors); the StageErrors alarm watches it.",
    None,
    (slo.STAGE_DIMENSION,),
    "handlers/api.py, handlers/_common.py",
)
STRATEGY_RETURN = MetricSpec(
    slo.STRATEGY_RETURN,
    Unit.NONE,
    Family.SLO,
    "The account's return since the previous execution cycle (paper fills, fees, positions at "
    "the last close), basis points; paired with the reference return for tracking error.",
    None,
    (slo.STAGE_DIMENSION,),
    "services/trading_cycle.py",
)
REFERENCE_RETURN = MetricSpec(
    slo.REFERENCE_RETURN,
    Unit.NONE,
    Family.SLO,
    "The same book's return over the same period if every fill had happened as the strategy "
    "backtest assumes (decision price, its flat cost rate), basis points.",
    None,
    (slo.STAGE_DIMENSION,),
    "services/trading_cycle.py",
)
SLIS: Final[tuple[MetricSpec, ...]] = (
    PROBE_SUCCESS,
    PROBE_FAILURE,
    DECISION_LATENCY,
    STRATEGY_RETURN,
    REFERENCE_RETURN,
    REQUESTS,
    ERRORS,
)

CATALOGUE: Final[tuple[MetricSpec, ...]] = (
    CANDLES_INGESTED,
    CANDLES_REJECTED,
    QUALITY_WARNINGS,
    DATA_STALENESS,
    INGEST_LATENCY,
    INGEST_SKIPPED,
    LAKE_OBJECTS_WRITTEN,
    MARKET_CAPS_INGESTED,
    MARKET_CAPS_REJECTED,
    MARKET_CAPS_BACKFILLED,
    MARKET_CAP_PAIRS_UNMAPPED,
    UNIVERSE_SIZE,
    EXCLUDED_BY_QUALITY,
    AGENT_VOTES,
    AGENT_ABSTENTIONS,
    AGENT_CONFIDENCE,
    GATED_DECISIONS,
    MODEL_FEATURE_PSI_MAX,
    MODEL_FEATURE_KS_MAX,
    MODEL_FEATURE_DRIFT_SHARE,
    MODEL_PREDICTION_PSI,
    MODEL_PREDICTION_KS,
    MODEL_CALIBRATION_DECAY,
    MODEL_DRIFT_ALARM,
    RISK_LEVEL,
    GROSS_EXPOSURE,
    DAILY_PNL,
    DRAWDOWN,
    EQUITY,
    ORDERS_CREATED,
    ORDERS_SENT,
    ORDERS_FILLED,
    ORDERS_REJECTED_BY_EXCHANGE,
    ORDERS_REJECTED_BY_RISK,
    DUPLICATE_ORDERS_PREVENTED,
    SLIPPAGE,
    ORDER_LATENCY,
    ORDERS_RECONCILED,
    ORDERS_CANCELLED_BY_KILL_SWITCH,
    OVERSELL_REFUSED,
    POSITION_EXIT_ERRORS,
    BOOK_RECORDS_UNREADABLE,
    SCAN_EXIT_ERRORS,
    BALANCE_DRIFT,
    PROTECTIVE_STOPS_PLACED,
    PROTECTIVE_STOPS_CANCELLED,
    PROTECTIVE_STOPS_TRIGGERED,
    TAKE_PROFITS_PLACED,
    TAKE_PROFITS_TRIGGERED,
    EXCHANGE_ERRORS,
    REJECTED_EVENTS,
    INGEST_RUNS,
    COLD_START,
    API_REQUESTS,
    API_LATENCY,
    KILL_SWITCH_ENGAGED,
    VENUE_KEYS_REFUSED,
    READ_ONLY_KEYS_REFUSED,
    *SLIS,
)


def catalogue() -> list[MetricSpec]:
    """Every metric spec, in declaration order."""
    return list(CATALOGUE)

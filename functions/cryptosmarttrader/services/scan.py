"""Scan use case: data as of a date → quality gate → agents → ranking → RiskGuard → paper orders.

The same service runs in the scan Lambda, in `cst scan` and in backtests, so a decision never
depends on where it was computed.

Given an SLI recorder (the deployed scan), each run publishes its decision latency: the time
from the market data in hand to the last decision recorded (quality gate, agents, ensemble,
RiskGuard, paper orders). Reading the market data is not part of it: its cost is the lake's, its
freshness is ``DataStaleness``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, abstentions
from cryptosmarttrader.domain.agents.registry import (
    MarketState,
    detect_regime,
    run_agents,
    strategy_for,
)
from cryptosmarttrader.domain.agents.tally import (
    ENSEMBLE_AGENT,
    ML_AGENT,
    REGIME_AGENT,
    AgentTally,
    tally_agents,
)
from cryptosmarttrader.domain.agents.technical import technical_votes
from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.book import (
    ANY_SYMBOL,
    blocked_symbols,
    book_exposure,
    position_episode,
)
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.orders import (
    Intent,
    OrderIntent,
    OrderStatus,
    RecordOutcome,
    resolve_close,
)
from cryptosmarttrader.domain.pit_universe import members_on
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.domain.ranking import RankedSignal, rank
from cryptosmarttrader.domain.risk import RiskGuard, RiskLevel, RiskLimits, size_for_fraction
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.domain.types import (
    Action,
    DomainError,
    Money,
    Price,
    Quantity,
    Side,
    Symbol,
    utc_from_ms,
)
from cryptosmarttrader.ports import (
    AgentData,
    AgentDataUnavailableError,
    KillSwitch,
    MarketData,
    Metrics,
    OrderStore,
    PositionStore,
    SignalStore,
)
from cryptosmarttrader.services.scoring import (
    RankingModel,
    TrainedModel,
    ensemble_scan_votes_with_agents,
    ranking_scan_votes_with_agents,
)
from cryptosmarttrader.settings import TradingSettings

if TYPE_CHECKING:
    from cryptosmarttrader.ports import SliRecorder

log = logging.getLogger(__name__)

TECHNICAL_ONLY = (
    "technical agent only: no fitted ensemble configured, so confidence is indicator agreement, "
    "not a calibrated probability"
)
MODEL_TECHNICAL = "technical-agent"  # the model version when no fitted ensemble is configured
LOOKBACK_DAYS = 260  # SMA200 plus a margin for the quality gate's history checks
RANKING_LOOKBACK_DAYS = 370  # the ranking model's 365-day high and listing age


class ScanInputError(ValueError):
    """The scan request itself is wrong (date in the future, before any data...)."""


class AgentVote(BaseModel):
    """One agent's vote on a ranked coin, or its abstention with the reason."""

    model_config = ConfigDict(frozen=True)

    agent: str
    probability: float | None
    confidence: float | None
    abstain_reason: str | None
    reasons: list[str]


class AgentCounts(BaseModel):
    """How one agent took part in a scan: coins it voted on, coins it abstained on and why."""

    model_config = ConfigDict(frozen=True)

    votes: int
    abstentions: int
    abstention_reasons: dict[str, int] = {}  # reason → coins (the 10 most frequent, then rest)
    vetoes: int = 0  # liquidity gate only: coins it vetoed (counted in its votes)


class ScanRow(BaseModel):
    """One ranked coin of a scan (``rows`` of `cst scan --json` and of the Lambda's report)."""

    model_config = ConfigDict(frozen=True)

    rank: int
    symbol: str
    score: float | None
    confidence: float | None
    action: Action
    client_order_id: str | None
    order_status: str | None
    price: float | None
    reasons: list[str]
    votes: list[AgentVote] = []  # each agent's vote or abstention behind this row
    # what this run did with the row's order: created it, or found it already recorded
    order_outcome: RecordOutcome | None = None


class ExitRow(BaseModel):
    """A held position and how it leaves: the strategy's exit rule (its levels from the entry
    price), and the CLOSE order already placed for it, if any."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    quantity: float
    price: float | None
    client_order_id: str | None
    order_status: str | None
    reasons: list[str]


class ScanReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    asof: datetime
    universe: int
    excluded_by_quality: int
    # coins with data as of the scan left out by the universe rules, with the reason each
    excluded_by_rule: dict[str, str] = {}
    quality_totals: dict[str, int]
    abstained: int
    orders_created: int
    duplicates_prevented: int
    decision_basis: str
    rows: list[ScanRow]
    model_version: str = MODEL_TECHNICAL  # what produced the scores (model id or the agent)
    # positions the scan no longer selects: one CLOSE decision each (or why none was recorded)
    exits: list[ExitRow] = []
    # BUY decisions on coins the paper venue cannot trade (research universe): not ordered
    not_ordered_untradable: int = 0
    # each agent's votes and abstentions (with the reasons) over the coins the scan scored
    agents: dict[str, AgentCounts] = {}
    regime: str | None = None  # the regime agent's market regime; None when it is unknown
    regime_reason: str | None = None  # its readings, or why no regime is known
    exposure: float | None = None  # the position-size multiplier the regime selected
    regime_effect: str | None = None  # what the regime changed in this scan


@dataclass(frozen=True)
class Analysis:
    """Everything decided from market data alone, before any store is touched."""

    asof_ms: int
    universe: int
    excluded_by_quality: int
    quality_totals: dict[str, int]
    abstained: int
    ranked: list[RankedSignal]
    prices: dict[str, float]
    decision_basis: str
    agent_stats: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    gated: int = 0  # votes over the whole universe passing the confidence gate
    excluded_by_rule: dict[str, str] = field(default_factory=dict)
    agent_votes: dict[str, list[AgentVote]] = field(default_factory=dict)  # ranked coins only
    model_version: str = MODEL_TECHNICAL
    agent_tally: dict[str, AgentTally] = field(default_factory=dict)
    regime: str | None = None
    regime_reason: str | None = None
    exposure: float = 1.0  # scales every new position's size (the regime's strategy)
    regime_effect: str | None = None


@dataclass
class ScanAnalyzer:
    """Market data → quality gate → agents → ranking. Reads only; writes nothing."""

    market: MarketData
    clock: Clock
    settings: TradingSettings
    # symbols never ranked; a mapping gives the reason of each (shown in the report)
    excluded_symbols: Collection[str] = field(default_factory=frozenset)
    # the promoted ranking model, or the legacy calibrated ensemble; None → technical agent only
    model: TrainedModel | RankingModel | None = None
    # point-in-time universe (monthly top-N snapshots); used on the days it covers
    membership: pl.DataFrame | None = None
    # Why the upstream data cannot be trusted right now (e.g. the ingest circuit breaker is
    # open), or None. When set, every agent abstains with that reason instead of voting.
    data_health: Callable[[], str | None] | None = None
    # Ranked, but never ordered: coins the paper venue can neither fill nor value (the research
    # view of the whole recorded universe, CST_UNIVERSE=all). Their BUYs are reported only.
    untradable: Collection[str] = field(default_factory=frozenset)
    # What the agents see beside the daily universe (funding, other venues' prices, sentiment)
    # as of the decision time; None: the universe alone (those agents abstain, saying why).
    agent_data: AgentData | None = None
    # Set by the deployed scan when the registry holds no promoted model: said in the decision
    # basis and on every row; with ``no_model_trades`` False the scan orders nothing.
    no_model_reason: str | None = None
    no_model_trades: bool = True

    def analyze(self, asof: datetime, top_n: int | None = None) -> Analysis:
        frame, asof_ms = self.read_market(asof)
        return self.decide(frame, asof_ms, top_n)

    def read_market(self, asof: datetime) -> tuple[pl.DataFrame, int]:
        """The daily bars up to ``asof``'s day (00:00 UTC) and that day in ms; I/O only."""
        if asof.tzinfo is None:
            raise ScanInputError(f"as-of must be timezone-aware UTC, got {asof!r}")
        now = self.clock.now()
        if asof > now:
            raise ScanInputError(f"as-of {asof:%Y-%m-%d} is in the future (now {now:%Y-%m-%d})")
        asof_ms = int(asof.astimezone(UTC).timestamp() * 1000)
        asof_ms -= asof_ms % DAY_MS  # a scan decides on the daily bar opening at 00:00 UTC
        lookback = RANKING_LOOKBACK_DAYS if isinstance(self.model, RankingModel) else LOOKBACK_DAYS
        frame = self.market.daily_universe(utc_from_ms(asof_ms), lookback)
        if frame.is_empty():
            raise ScanInputError(
                f"no market data in the {lookback} days up to {utc_from_ms(asof_ms):%Y-%m-%d}"
            )
        return frame, asof_ms

    def decide(self, frame: pl.DataFrame, asof_ms: int, top_n: int | None = None) -> Analysis:
        """Quality gate → agents → ranking over the bars :meth:`read_market` returned."""
        n = top_n or self.settings.top_n
        present = set(frame["symbol"].unique().to_list())
        by_rule = {
            s: (
                str(self.excluded_symbols[s])
                if isinstance(self.excluded_symbols, Mapping)
                else "excluded by the universe rules"
            )
            for s in sorted(present.intersection(self.excluded_symbols))
        }
        frame = frame.filter(~pl.col("symbol").is_in(list(self.excluded_symbols)))
        top = self.model.top_n if isinstance(self.model, RankingModel) else 200
        members = self._members(asof_ms, top)
        if members is not None:  # a replayed day: the point-in-time universe of that day
            frame = frame.filter(pl.col("symbol").is_in(members))
        # a coin's broken rows (duplicate or sub-daily days, a token swap) cut that coin's
        # series there; they never abort the scan
        cut = cut_series(frame).frame
        current = cut.filter(pl.col("segment") == pl.col("segment").max().over("symbol"))
        frame = current.select(frame.columns)
        quality = check_daily(
            frame.filter(pl.col("ts") > asof_ms - LOOKBACK_DAYS * DAY_MS), asof_ms
        )
        blocked = self.data_health() if self.data_health is not None else None
        no_trade: str | None = None
        row_note: str | None = None  # said on every row (BUYs stay BUYs)
        not_run: dict[str, str] = {}
        regime = None
        if blocked is not None:
            symbols = quality.clean["symbol"].unique().sort().to_list()
            votes = abstentions(symbols, "all", asof_ms, f"data source unhealthy: {blocked}")
            basis = f"abstaining: {blocked}"
            agents = votes
        elif isinstance(self.model, RankingModel):
            # the ML predictor (the model's rank percentile) and the ensemble (its calibrated
            # P(event), the votes ranked and gated on) beside the other agents
            votes, model_votes, quality = ranking_scan_votes_with_agents(
                self.model, frame, asof_ms, members
            )
            basis = self.model.description
            if not self.model.trade:
                no_trade = f"no trade: {self.model.decision_reason}"
            state = self._state(quality.clean, asof_ms)
            regime = detect_regime(state, asof_ms)
            agents = pl.concat([model_votes, run_agents(state, asof_ms)], how="vertical")
        elif self.model is None:
            votes = technical_votes(quality.clean, asof_ms)
            basis = TECHNICAL_ONLY
            if self.no_model_reason is not None:
                basis = f"{self.no_model_reason} ({TECHNICAL_ONLY})"
                row_note = self.no_model_reason
                if not self.no_model_trades:
                    no_trade = self.no_model_reason
            state = self._state(quality.clean, asof_ms)
            regime = detect_regime(state, asof_ms)
            agents = run_agents(state, asof_ms)
            why = self.no_model_reason or (
                "no fitted model configured: the scan ranks on the technical agent alone"
            )
            not_run = {ML_AGENT: why, ENSEMBLE_AGENT: why}
        else:
            state = self._state(quality.clean, asof_ms)
            regime = detect_regime(state, asof_ms)
            votes, agents = ensemble_scan_votes_with_agents(
                self.model, frame, quality.clean, asof_ms, state
            )
            basis = self.model.description
        scored = votes["symbol"].unique().sort().to_list()
        # the scoring votes are tallied once: the technical-only scan scores with an agent
        # that is also among ``agents``
        extra = votes.filter(~pl.col("agent").is_in(agents["agent"].unique().to_list()))
        tally = tally_agents(
            pl.concat([agents.cast(VOTE_SCHEMA), extra.cast(VOTE_SCHEMA)], how="vertical"),  # type: ignore[arg-type]
            scored,
            regime,
            {**not_run, REGIME_AGENT: f"data source unhealthy: {blocked}"} if blocked else not_run,
        )
        strategy = None if regime is None else strategy_for(regime)
        exposure = 1.0 if strategy is None else strategy.exposure
        effect = None
        if regime is not None and strategy is not None:
            named = regime.regime.value if regime.regime is not None else "unknown regime"
            effect = (
                f"{named}: new positions sized at {exposure:.2f}x the normal fraction "
                f"({strategy.rationale})"
            )
        if isinstance(self.model, RankingModel) and blocked is None and votes.height:
            # the model's own order (its score, highest first): the calibrated probability is
            # monotone in it but flat where the model cannot tell coins apart
            order = {sym: i for i, sym in enumerate(votes["symbol"].to_list())}
            everything = rank(
                votes, confidence_gate=self.settings.confidence_gate, top_n=votes.height
            )
            ranked = sorted(everything, key=lambda sig: order.get(sig.symbol, len(order)))[:n]
        else:
            ranked = rank(votes, confidence_gate=self.settings.confidence_gate, top_n=n)
        if row_note is not None and no_trade is None:
            ranked = [replace(s, reasons=(*s.reasons, row_note)) for s in ranked]
        if no_trade is not None:
            ranked = [
                replace(s, action=Action.HOLD, reasons=(*s.reasons, no_trade))
                if s.action is Action.BUY
                else replace(s, reasons=(*s.reasons, no_trade))
                for s in ranked
            ]
        voted = votes.filter(pl.col("abstain_reason").is_null())
        stats = voted.group_by("agent").agg(pl.len().alias("n"), pl.col("confidence").mean())
        gated = (
            0
            if no_trade is not None
            else voted.filter(
                (pl.col("probability") > 0.5)
                & (pl.col("confidence") >= self.settings.confidence_gate)
            ).height
        )
        at_asof = quality.clean.filter(pl.col("ts") == asof_ms).select("symbol", "close")
        return Analysis(
            asof_ms=asof_ms,
            universe=frame["symbol"].n_unique(),
            excluded_by_quality=len(quality.excluded),
            quality_totals=quality.totals(),
            abstained=int(votes["abstain_reason"].is_not_null().sum()),
            ranked=ranked,
            prices={str(k): float(v) for k, v in at_asof.iter_rows()},
            decision_basis=basis,
            agent_stats={
                str(agent): (int(count), None if mean is None else float(mean))
                for agent, count, mean in stats.iter_rows()
            },
            gated=gated,
            excluded_by_rule=by_rule,
            agent_votes=_votes_of(agents, [r.symbol for r in ranked]),
            model_version=MODEL_TECHNICAL if self.model is None else self.model.version,
            agent_tally=tally,
            regime=None if regime is None or regime.regime is None else regime.regime.value,
            regime_reason=None if regime is None else regime.reason,
            exposure=exposure,
            regime_effect=effect,
        )

    def _state(self, clean: pl.DataFrame, asof_ms: int) -> MarketState:
        """The agents' market state: the universe plus what ``agent_data`` holds as of the
        decision. A source that fails as a whole leaves those agents abstaining with its
        reason; it never aborts the scan."""
        if self.agent_data is None:
            return MarketState(universe=clean)
        try:
            return self.agent_data.state(clean, asof_ms)
        except (ValueError, OSError, AgentDataUnavailableError) as exc:
            why = f"agent data unavailable: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            symbols = clean["symbol"].unique().to_list()
            notes = dict.fromkeys(symbols, why)
            return MarketState(
                universe=clean,
                sentiment_unavailable=why,
                abstain_notes={"funding": notes, "arbitrage": notes},
            )

    def _members(self, asof_ms: int, top_n: int) -> list[str] | None:
        """The point-in-time members on the day (priced ones), or None when no snapshot covers
        it (the live scan then takes the day's own top-N by market cap)."""
        if self.membership is None:
            return None
        day = asof_ms // DAY_MS
        members = members_on(self.membership, [day], top_n)
        if members.is_empty() or day - int(members["snapshot_day"].max()) > 35:  # type: ignore[arg-type]
            return None
        return members["coingecko_id"].drop_nulls().to_list()


@dataclass
class ScanService:
    """Analysis → RiskGuard → idempotent paper orders in the order store."""

    analyzer: ScanAnalyzer
    orders: OrderStore
    positions: PositionStore
    kill_switch: KillSwitch
    metrics: Metrics
    signals: SignalStore | None = None
    risk_level: RiskLevel = RiskLevel.NORMAL  # used when no persisted risk state is wired
    risk_state: Callable[[], RiskLevel] | None = None  # the RiskGuard's persisted level, per run
    slis: SliRecorder | None = None  # the deployed scan publishes its decision latency
    timer: Callable[[], float] = time.perf_counter  # monotonic seconds

    @property
    def settings(self) -> TradingSettings:
        return self.analyzer.settings

    @property
    def clock(self) -> Clock:
        return self.analyzer.clock

    def run(self, asof: datetime, top_n: int | None = None) -> ScanReport:
        frame, asof_ms = self.analyzer.read_market(asof)
        started = self.timer()
        report = self.execute(self.analyzer.decide(frame, asof_ms, top_n))
        if self.slis is not None:
            decided_ms = (self.timer() - started) * 1000.0
            self.slis.emit((mn.DECISION_LATENCY, decided_ms))
        return report

    def execute(self, analysis: Analysis) -> ScanReport:
        self.metrics.add("UniverseSize", analysis.universe)
        self.metrics.add("ExcludedByQuality", analysis.excluded_by_quality)
        self.metrics.add("AgentAbstentions", analysis.abstained)
        for agent, (count, mean_confidence) in analysis.agent_stats.items():
            self.metrics.add("AgentVotes", count, dimensions={"agent": agent})
            if mean_confidence is not None:
                self.metrics.add(
                    "AgentConfidence", mean_confidence, "None", dimensions={"agent": agent}
                )
        self.metrics.add("GatedDecisions", analysis.gated)
        # the persisted level, read once per run, so a restart keeps it
        level = self.risk_state() if self.risk_state is not None else self.risk_level
        # one read of the book: positions and the open-orders index (not the whole history)
        positions, open_orders = self.positions.load_all(), self.orders.open_orders()
        # notional per asset: positions plus non-terminal buy orders (pending exposure), updated
        # in place as this run's orders are recorded
        exposure = book_exposure(positions, open_orders)
        # a dust remainder (below the venue's minimums, closed for trading) is no held position:
        # a new entry in its coin is allowed, its fill adds to the dust
        held = {s for s, pos in positions.items() if self._held(pos, analysis.prices.get(s)) > 0}
        # entries still open at the venue or waiting to be sent (an earlier decision's)
        open_buys: dict[str, set[str]] = {}
        for order in open_orders:
            if order.side is Side.BUY:
                open_buys.setdefault(order.symbol, set()).add(order.key)
        # a coin with a stored record that cannot be read has an unknown exposure: no entry
        blocked = blocked_symbols(positions, open_orders)
        rows, created, dupes = self._act(
            analysis.ranked,
            analysis.prices,
            level,
            exposure,
            analysis.exposure,
            held,
            open_buys,
            blocked,
        )
        untradable = sum(
            r.action is Action.BUY and r.symbol in self.analyzer.untradable for r in rows
        )
        rows = [
            r.model_copy(update={"votes": analysis.agent_votes.get(r.symbol, [])}) for r in rows
        ]
        exits = self._exits(analysis)
        self.metrics.add("OrdersCreated", created)
        self.metrics.add("DuplicateOrdersPrevented", dupes)
        report = ScanReport(
            asof=utc_from_ms(analysis.asof_ms),
            universe=analysis.universe,
            excluded_by_quality=analysis.excluded_by_quality,
            excluded_by_rule=analysis.excluded_by_rule,
            quality_totals=analysis.quality_totals,
            abstained=analysis.abstained,
            orders_created=created,
            duplicates_prevented=dupes,
            decision_basis=analysis.decision_basis,
            rows=rows,
            exits=exits,
            not_ordered_untradable=untradable,
            model_version=analysis.model_version,
            agents={
                name: AgentCounts(
                    votes=t.votes,
                    abstentions=t.abstentions,
                    abstention_reasons=dict(t.abstention_reasons),
                    vetoes=t.vetoes,
                )
                for name, t in analysis.agent_tally.items()
            },
            regime=analysis.regime,
            regime_reason=analysis.regime_reason,
            exposure=None if analysis.regime_effect is None else analysis.exposure,
            regime_effect=analysis.regime_effect,
        )
        if self.signals is not None:
            # the published signals keep the API's contract: what this run did with each order
            # (``order_outcome``) is the run's own report, not a signal
            published = report.model_dump(
                mode="json", exclude={"rows": {"__all__": {"order_outcome"}}}
            )
            self.signals.save(report.asof.date().isoformat(), published)
        return report

    def _act(
        self,
        ranked: Iterable[RankedSignal],
        prices: dict[str, float],
        level: RiskLevel,
        exposure: dict[str, Decimal],
        regime_exposure: float = 1.0,
        held: frozenset[str] | set[str] = frozenset(),
        open_buys: Mapping[str, set[str]] | None = None,
        blocked: Mapping[str, str] | None = None,
    ) -> tuple[list[ScanRow], int, int]:
        guard = RiskGuard(RiskLimits(Decimal(str(self.settings.max_asset_fraction))))
        equity = Money(Decimal(str(self.settings.equity_usd)))
        rows: list[ScanRow] = []
        created = dupes = 0
        for i, sig in enumerate(ranked, start=1):
            price = prices.get(sig.symbol)
            row: dict[str, Any] = {
                "rank": i,
                "symbol": sig.symbol,
                "score": sig.score,
                "confidence": sig.confidence,
                "action": sig.action,
                "client_order_id": None,
                "order_status": None,
                "price": price,
                "reasons": list(sig.reasons),
            }
            if sig.action is Action.BUY and sig.symbol in self.analyzer.untradable:
                row["reasons"] = [
                    *sig.reasons,
                    "not ordered: the paper venue cannot trade this coin (no recorded exchange "
                    "pair); research universe only",
                ]
            elif sig.action is Action.BUY and (
                unknown := (blocked or {}).get(sig.symbol) or (blocked or {}).get(ANY_SYMBOL)
            ):
                row["reasons"] = [
                    *sig.reasons,
                    f"not ordered: its exposure is unknown while the book cannot be read "
                    f"({unknown})",
                ]
            elif sig.action is Action.BUY and price is not None:
                row.update(
                    self._order(
                        i,
                        sig,
                        Price.of(price),
                        guard,
                        equity,
                        exposure,
                        level,
                        regime_exposure,
                        (open_buys or {}).get(sig.symbol, set()),
                        sig.symbol in held,
                    )
                )
                created += row.get("order_outcome") is RecordOutcome.CREATED
                dupes += row.get("order_outcome") is RecordOutcome.DUPLICATE
            rows.append(ScanRow(**row))
        return rows, created, dupes

    def _held(self, position: Position, price: float | None) -> Decimal:
        """The quantity of ``position`` the scan counts as held: 0 for a dust remainder, a
        holding worth less than ``dust_value_usd`` at ``price`` (at its entry price when the
        scan has no price; a holding of unknown worth is held)."""
        quantity = position.quantity
        if quantity <= 0:
            return Decimal(0)
        mark = Decimal(repr(price)) if price is not None and price > 0 else position.average_price
        if mark is None or mark <= 0:
            return quantity
        worth = quantity * mark
        return Decimal(0) if worth < Decimal(str(self.settings.dust_value_usd)) else quantity

    def _exits(self, analysis: Analysis) -> list[ExitRow]:
        """Every held position and how it leaves: by the strategy's exit rule alone.

        The strategy holds a position from its opening fill until the exit rule (take profit,
        stop, time limit: the training label's rule, the evaluation's book and `cst backtest`'s)
        says exit; the hourly execution cycle checks the rule and places that CLOSE. A coin
        dropping out of the scan's selection is not an exit (the evaluated strategy does not
        sell it either). The row shows the levels from the entry price and the CLOSE already
        placed for the position, if any."""
        rule = self.settings.exit_rule
        out: list[ExitRow] = []
        book = self.positions.load_all()
        for bad in book.unreadable:
            # a position record that cannot be read: said on its row and counted, the other
            # positions (and the scan) go on
            self.metrics.add(mn.SCAN_EXIT_ERRORS.name, 1)
            out.append(
                ExitRow(
                    symbol=bad.symbol,
                    quantity=0.0,
                    price=analysis.prices.get(bad.symbol),
                    client_order_id=None,
                    order_status=None,
                    reasons=[f"its position cannot be read ({bad.reason}): repair the record"],
                )
            )
        for symbol, pos in sorted(book.items()):
            price = analysis.prices.get(symbol)
            held = self._held(pos, price)
            if held <= 0:
                continue  # nothing held, or a dust remainder: no exit to place
            entry = pos.average_price
            reasons = [f"held: the exit rule closes it ({rule.describe()})"]
            if entry is not None and entry > 0:
                e = float(entry)
                reasons.append(
                    f"from the entry {e:.6g}: take profit at {rule.take_profit_price(e):.6g}, "
                    f"stop at {rule.stop_price(e):.6g}; the hourly execution cycle places the exit"
                )
            else:
                reasons.append("no entry price recorded: the exit rule cannot be judged")
            row: dict[str, Any] = {
                "symbol": symbol,
                "quantity": float(held),
                "price": price,
                "client_order_id": None,
                "order_status": None,
            }
            keyed_price = price if price is not None else (float(entry) if entry else None)
            if keyed_price is not None and keyed_price > 0:
                # the close is keyed on the position: a live one (the exit rule's, a flatten)
                try:
                    intent, live = resolve_close(
                        OrderIntent(
                            strategy=self.settings.strategy,
                            symbol=Symbol(symbol),
                            side=Side.SELL,
                            intent=Intent.CLOSE,
                            signal_bar_ms=analysis.asof_ms,
                            quantity=Quantity(held),
                            reference_price=Price.of(keyed_price),
                        ),
                        position_episode(pos),
                        self._status_of,
                    )
                except (DomainError, ValueError, ArithmeticError, KeyError, TypeError) as exc:
                    # this position's close cannot be resolved (its close's record cannot be
                    # read, an attribute missing): said on its row and counted,
                    # the other positions (and the scan) go on
                    log.error("position %s: its close cannot be resolved: %s", symbol, exc)
                    self.metrics.add(mn.SCAN_EXIT_ERRORS.name, 1)
                    reasons.append(f"its close cannot be resolved: {exc}")
                    out.append(ExitRow(**row, reasons=reasons))
                    continue
                if live is not None:
                    row.update(
                        client_order_id=intent.client_order_id.value, order_status=live.value
                    )
                    reasons.append(f"being closed: order {intent.client_order_id} {live.value}")
            out.append(ExitRow(**row, reasons=reasons))
        return out

    def _order(
        self,
        rank: int,
        sig: RankedSignal,
        price: Price,
        guard: RiskGuard,
        equity: Money,
        exposure: dict[str, Decimal],
        level: RiskLevel,
        regime_exposure: float = 1.0,
        open_buys: set[str] | frozenset[str] = frozenset(),
        held: bool = False,
    ) -> dict[str, Any]:
        # the regime's exposure scales the size; the RiskGuard still caps it at the full fraction
        fraction = Decimal(str(self.settings.max_asset_fraction)) * Decimal(str(regime_exposure))
        qty = size_for_fraction(equity, fraction, price.value)
        if qty is None:
            return {"action": Action.HOLD, "reasons": [*sig.reasons, "size rounds to zero"]}
        intent = OrderIntent(
            strategy=self.settings.strategy,
            symbol=Symbol(sig.symbol),
            side=Side.BUY,
            intent=Intent.OPEN,
            signal_bar_ms=sig.ts,
            quantity=qty,
            reference_price=price,
        )
        existing = self.orders.find(intent.client_order_id.value)
        if existing is not None:
            return {
                "client_order_id": intent.client_order_id.value,
                "order_status": existing.status.value,
                "reasons": [
                    *sig.reasons,
                    "duplicate suppressed: this decision was already ordered",
                ],
                "order_outcome": RecordOutcome.DUPLICATE,
            }
        kill = self.kill_switch.status()  # read before every order (cached a few seconds)
        # one entry per position, as evaluated and backtested: the exit rule manages the
        # position from its opening fill; a BUY again is not a second entry (the kill-switch,
        # when on, is the reason reported: the guard below refuses with it)
        if held and not kill.on:
            return {
                "action": Action.HOLD,
                "reasons": [
                    *sig.reasons,
                    "already held: no second entry, the exit rule manages the position",
                ],
            }
        earlier = sorted(open_buys - {intent.client_order_id.value})
        if earlier and not kill.on:
            return {
                "action": Action.HOLD,
                "reasons": [
                    *sig.reasons,
                    f"an earlier entry of this coin is still open (order {earlier[0]}): no "
                    "second entry, the exit rule manages the position once it fills",
                ],
            }
        verdict = guard.check(
            intent,
            equity=equity,
            asset_exposure=exposure.get(sig.symbol, Decimal(0)),
            level=level,
            kill_switch_on=kill.on,
            kill_switch_reason=kill.reason,
        )
        if not verdict.approved or verdict.quantity is None:
            return {
                "action": Action.HOLD,
                "reasons": [
                    *sig.reasons,
                    f"rejected by RiskGuard rule {verdict.rule}: {verdict.reason}",
                ],
            }
        if verdict.quantity != intent.quantity:
            intent = replace(intent, quantity=verdict.quantity)
        outcome = self._record(intent, rank, sig.reasons)
        if outcome["order_outcome"] is RecordOutcome.CREATED:
            notional = intent.quantity.value * price.value
            exposure[sig.symbol] = exposure.get(sig.symbol, Decimal(0)) + notional
            outcome["reasons"] = [
                *sig.reasons,
                f"paper order {intent.quantity} @ {price.value:.6g} ({verdict.reason})",
            ]
        return outcome

    def _record(self, intent: OrderIntent, rank: int, reasons: Sequence[str]) -> dict[str, Any]:
        """Record ``intent`` as a NEW order exactly once (the conditional insert keyed on its
        client order ID decides); the row fields, with the typed ``order_outcome``."""
        coid = intent.client_order_id.value
        now = self.clock.now()
        order = Order.new(
            intent,
            created_at=now,
            mode="paper",
            rank=rank,
            # the execution function sends it until then, after the RiskGuard decides again
            valid_for=timedelta(minutes=self.settings.decision_valid_minutes),
        )
        if not self.orders.record(order):
            return {
                "client_order_id": coid,
                "order_status": "duplicate",
                "reasons": [*reasons, "duplicate suppressed: order already recorded"],
                "order_outcome": RecordOutcome.DUPLICATE,
            }
        return {
            "client_order_id": coid,
            "order_status": OrderStatus.NEW.value,
            "reasons": list(reasons),
            "order_outcome": RecordOutcome.CREATED,
        }

    def _status_of(self, client_order_id: str) -> OrderStatus | None:
        stored = self.orders.find(client_order_id)
        return None if stored is None else stored.status


def _votes_of(votes: pl.DataFrame, symbols: Sequence[str]) -> dict[str, list[AgentVote]]:
    """Each agent's vote or abstention on the ranked ``symbols`` (top N: a few dozen rows)."""
    mine = votes.filter(pl.col("symbol").is_in(list(symbols))).sort("symbol", "agent")
    out: dict[str, list[AgentVote]] = {}
    for row in mine.iter_rows(named=True):
        out.setdefault(str(row["symbol"]), []).append(
            AgentVote(
                agent=str(row["agent"]),
                probability=row["probability"],
                confidence=row["confidence"],
                abstain_reason=row["abstain_reason"],
                reasons=list(row["reasons"] or []),
            )
        )
    return out

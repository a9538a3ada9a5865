"""Composition root: builds services from settings and adapters. Handlers and the CLI share it,
so a Lambda run and a CLI run of the same scan use the same objects."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptosmarttrader.adapters.aws_clients import sagemaker_runtime_client
from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
    ensure_open_index,
)
from cryptosmarttrader.adapters.lake_agent_data import LakeAgentData
from cryptosmarttrader.adapters.lake_market_data import LakeMarketData
from cryptosmarttrader.adapters.paper_exchange import (
    PaperExchange,
    StatePaperBook,
    paper_capabilities,
)
from cryptosmarttrader.adapters.pit_membership import load_pit_membership
from cryptosmarttrader.adapters.recorded_agent_data import RecordedAgentData
from cryptosmarttrader.adapters.recorded_data import DataSourceError, RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.adapters.s3_market_caps import S3MarketCapLake
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.balances import COMMISSION_ASSETS
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import ExchangeId
from cryptosmarttrader.domain.model_canary import ModelVersion
from cryptosmarttrader.domain.risk import RiskGuard, RiskLimits
from cryptosmarttrader.domain.universe import is_tradable_pair, spot_quote
from cryptosmarttrader.ports import (
    BalanceSource,
    MarketData,
    Metrics,
    Ranker,
    RankerUnavailableError,
    SliRecorder,
)
from cryptosmarttrader.services.execution import ExecutionService, OrderGateway
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.services.scan import ScanAnalyzer, ScanService
from cryptosmarttrader.services.scoring import RankingModel, TrainedModel
from cryptosmarttrader.services.trading_cycle import TradingCycle
from cryptosmarttrader.settings import AwsResources, MlSettings, TradingSettings, VenueSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from cryptosmarttrader.adapters.aws_clients import AwsClients
    from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue
    from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
    from cryptosmarttrader.services.model_registry import ModelRegistryService

REPO_ROOT = Path(__file__).resolve().parents[2]


class DataSourceUnavailableError(RuntimeError):
    """No real data source could be found. The product never falls back to synthetic data."""


def resolve_data_dir(explicit: Path | None) -> Path:
    """--data, else CST_DATA_DIR, else ../shared/data beside the repository or the cwd."""
    if explicit is not None:
        if not explicit.is_dir():
            raise DataSourceUnavailableError(f"data directory not found: {explicit}")
        return explicit
    env = os.environ.get("CST_DATA_DIR")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise DataSourceUnavailableError(f"CST_DATA_DIR points to a missing directory: {path}")
        return path
    for candidate in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if (candidate / "coingecko_daily").is_dir():
            return candidate
    raise DataSourceUnavailableError(
        "no recorded market data: pass --data DIR or set CST_DATA_DIR "
        "(the folder holding coingecko_daily/ and binance_spot/)"
    )


def lake_market_data(s3: S3Client, resources: AwsResources, exchange: str) -> LakeMarketData:
    """The daily candles of ``exchange`` in the S3 lake, tradable pairs only (stablecoin and
    wrapped bases left out), with the CoinGecko market caps the ingest wrote beside them: the
    market data of every Lambda on the deployed path."""
    lake = S3ParquetLake(resources.lake_bucket, s3)
    return LakeMarketData(
        lake,
        exchange,
        lambda: [s for s in lake.symbols(exchange, "1d") if is_tradable_pair(s)],
        market_caps=S3MarketCapLake(resources.lake_bucket, s3),
    )


# The venues whose hourly candles the deployed scan compares for the arbitrage agent (each one
# the ingest schedules cover; a venue without candles in the lake is named in the abstention).
ARBITRAGE_VENUES: tuple[str, ...] = ("binance", "kucoin", "kraken")
RANKING_GROUP = "cst-rank"  # the registry group of the ranking model the scan serves
ALLOW_TECHNICAL_ONLY_TRADING = "CST_ALLOW_TECHNICAL_ONLY_TRADING"  # the opt-in's variable
NO_PROMOTED_MODEL = "no promoted model: technical agent only, no trades"
NO_PROMOTED_MODEL_TRADING = (
    "no promoted model: technical agent only, paper trading allowed by "
    f"{ALLOW_TECHNICAL_ONLY_TRADING}=true"
)


def lake_agent_data(
    s3: S3Client, resources: AwsResources, exchange: str, *, replay: bool = False
) -> LakeAgentData:
    """What the deployed scan's agents read beside the daily universe: funding, mark,
    sentiment and the venues' withdrawal constraints from the lake, each venue's hourly candles
    for the cross-exchange quotes. A replay deployment (``replay``) has no withdrawal data
    recorded: the arbitrage agent says the constraints are unknown instead of abstaining."""
    from cryptosmarttrader.adapters.recorded_agent_data import RECORDED_WITHDRAWALS_UNKNOWN
    from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs

    return LakeAgentData(
        S3ParquetLake(resources.lake_bucket, s3),
        S3AgentInputs(resources.lake_bucket, s3),
        home=exchange,
        venues=(exchange, *(v for v in ARBITRAGE_VENUES if v != exchange)),
        withdrawals_unavailable=RECORDED_WITHDRAWALS_UNKNOWN if replay else None,
    )


def ranking_server(
    model: RankingModel,
    endpoint: str | None,
    runtime: Callable[[], Any],
    *,
    version: int = 0,
    artifact: bytes = b"",
    sagemaker: Callable[[], Any] | None = None,
) -> RankingModel:
    """Where the promoted ranking model's scores come from: the SageMaker endpoint named by
    ``CST_RANKING_ENDPOINT`` when one is configured, else the registry artefact's trees
    evaluated in process. Through the endpoint, each scan first checks (``sagemaker``, the
    control-plane client) that it is ``InService`` on the configuration of promoted
    ``version`` (named from its registry ``artifact`` as the deployer names it); otherwise, or
    on an error of the endpoint, the model's agents (ml, ensemble) abstain with the reason:
    never a fallback to the in-process evaluator. The calibration and the signals are the
    artefact's either way. The clients are built only when needed."""
    if not endpoint:
        return model
    from cryptosmarttrader.adapters.sagemaker_deployer import ranking_version_name
    from cryptosmarttrader.adapters.sagemaker_predictor import SageMakerRanker

    if sagemaker is None or version < 1 or not artifact:
        raise ValueError("an endpoint-served ranking model needs its version and artefact")
    ranker = SageMakerRanker(
        endpoint,
        model.ranker.feature_names,
        runtime(),
        model.ranker.to_bytes(),
        version=version,
        expected_config=ranking_version_name(endpoint, version, artifact),
        sagemaker=sagemaker(),
    )
    return replace(model, ranker=ranker, served_by=f"SageMaker endpoint {endpoint}")


def registry_service(
    settings: MlSettings,
    resources: AwsResources,
    clients: AwsClients,
    clock: Clock,
    serving_code: bytes | None = None,
    group: str | None = None,
) -> ModelRegistryService:
    """The registry of ``group`` (default ``CST_MODEL_GROUP``).

    The daily classifier's: the registry ``settings`` name; with the SageMaker registry and an
    endpoint (``CST_MODEL_ENDPOINT`` + ``CST_MODEL_ROLE_ARN``), promotions and rollbacks
    redeploy it. The ranking model's (:data:`RANKING_GROUP`): always the registry the scan
    reads (:func:`ranking_registry`); with ``CST_RANKING_ENDPOINT`` (+ ``CST_MODEL_ROLE_ARN``
    and ``CST_RANKING_IMAGE_URI``), promotions and rollbacks deploy that endpoint with the
    built-in XGBoost container."""
    from cryptosmarttrader.adapters.model_registry_sagemaker import (
        build_model_registry,
        sagemaker_client,
    )
    from cryptosmarttrader.adapters.sagemaker_deployer import (
        SageMakerEndpointDeployer,
        SageMakerRankingDeployer,
    )
    from cryptosmarttrader.ports import ModelDeployer
    from cryptosmarttrader.services.model_registry import ModelRegistryService

    deployer: ModelDeployer | None = None
    if (group or settings.model_group) == RANKING_GROUP:
        ranking = ranking_registry(settings, resources, clients)
        if settings.ranking_endpoint:
            if not settings.model_role_arn:
                raise ValueError("CST_MODEL_ROLE_ARN is required with CST_RANKING_ENDPOINT")
            deployer = SageMakerRankingDeployer(
                sagemaker_client(resources),
                s3=clients.s3,
                artifact=ranking.artifact,
                endpoint=settings.ranking_endpoint,
                image_uri=settings.ranking_image_uri,
                role_arn=settings.model_role_arn,
            )
        return ModelRegistryService(ranking, clock, deployer)
    registry = build_model_registry(settings, resources, clients, serving_code)
    if settings.model_registry == "sagemaker" and settings.model_endpoint:
        if not settings.model_role_arn:
            raise ValueError("CST_MODEL_ROLE_ARN is required with CST_MODEL_ENDPOINT")
        deployer = SageMakerEndpointDeployer(
            sagemaker_client(resources),
            s3=clients.s3,
            group=settings.model_group,
            endpoint=settings.model_endpoint,
            role_arn=settings.model_role_arn,
        )
    return ModelRegistryService(registry, clock, deployer)


def ranking_registry(
    settings: MlSettings, resources: AwsResources, clients: AwsClients
) -> EmbeddedModelRegistry:
    """The ranking model's versions (:data:`RANKING_GROUP`): artefacts in S3, versions in the
    state table, the registry the deployed scan serves its production version from."""
    from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry

    return EmbeddedModelRegistry(
        RANKING_GROUP,
        bucket=settings.model_bucket or resources.lake_bucket,
        table=resources.state_table,
        s3=clients.s3,
        dynamodb=clients.dynamodb,
        prefix=settings.model_prefix,
    )


class _Unavailable:
    """The ranker of a model that must not score this run: every ``score`` raises ``reason``
    (the model's agents, ml and ensemble, abstain with it), nothing else scores in its place."""

    def __init__(self, inner: Ranker, reason: str) -> None:
        self._inner = inner
        self._reason = reason

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._inner.feature_names

    def score(self, features: Any) -> Any:
        raise RankerUnavailableError(self._reason)

    def to_bytes(self) -> bytes:
        return self._inner.to_bytes()


@dataclass(frozen=True)
class _Loaded:
    version: int
    artifact_sha256: str
    model: RankingModel


class PromotedRanking:
    """The production version of the ranking model group as the scan serves it, across the
    invocations of one execution environment.

    :meth:`current` reads the registry's production pointer on every call (one strongly
    consistent DynamoDB ``GetItem``: the promoted version and its artefact's SHA-256 recorded at
    registration) and reloads the model only when that pair changed, so a promotion or a
    rollback is served by the next scan, never after the next cold start only; only then are
    the version item and its artefact read (the registry's checked read: an artefact whose
    digest is not the registered one is refused). A read of the pointer that fails leaves the
    model's agents (ml, ensemble) abstaining with the reason (the model loaded before never
    scores while the promoted version is unknown); with nothing loaded yet, the error is
    raised."""

    def __init__(
        self,
        registry: EmbeddedModelRegistry,
        clock: Clock,
        load: Callable[[ModelVersion, bytes], RankingModel],
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._load = load
        self._loaded: _Loaded | None = None

    def current(self) -> RankingModel | None:
        from cryptosmarttrader.ports import RegistryStoreError
        from cryptosmarttrader.services.model_registry import ModelRegistryService

        try:
            pointer = self._registry.production_pointer()
        except (RegistryStoreError, ValueError) as exc:
            return self._unavailable(
                f"model registry unreadable: the promoted {RANKING_GROUP} version is unknown "
                f"({_first_line(exc)})",
                exc,
            )
        if pointer is None:
            self._loaded = None
            return None
        loaded = self._loaded
        if (
            loaded is not None
            and loaded.version == pointer.version
            and pointer.artifact_sha256 in ("", loaded.artifact_sha256)
        ):
            return loaded.model
        try:
            live = ModelRegistryService(self._registry, self._clock).pointed(pointer)
        except (RegistryStoreError, ValueError) as exc:
            return self._unavailable(
                f"model registry unreadable: the promoted {RANKING_GROUP} version is unknown "
                f"({_first_line(exc)})",
                exc,
            )
        try:
            artifact = self._registry.checked_artifact(live)
            model = self._load(live, artifact)
        except (RegistryStoreError, ValueError) as exc:
            return self._unavailable(
                f"promoted {live.label} cannot be loaded ({_first_line(exc)})", exc
            )
        self._loaded = _Loaded(live.version, hashlib.sha256(artifact).hexdigest(), model)
        return model

    def _unavailable(self, why: str, exc: Exception) -> RankingModel:
        """The loaded model, abstaining with ``why`` and reported as no version; with nothing
        loaded, ``exc`` is raised (the scan fails, saying why)."""
        if self._loaded is None:
            raise exc
        held = self._loaded.model
        why = f"{why}: not scoring with the loaded v{self._loaded.version}"
        return replace(
            held,
            ranker=_Unavailable(held.ranker, why),
            evaluation={**held.evaluation, "version": f"{RANKING_GROUP}/unknown"},
            served_by="nothing (the promoted version is unknown)",
        )


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else repr(exc)


def promoted_ranking(clients: AwsClients, resources: AwsResources, clock: Clock) -> PromotedRanking:
    """The deployed scan's ranking model: the registry's production version, from its
    artefact in S3, scored by the endpoint ``CST_RANKING_ENDPOINT`` names when set (only while
    it serves that version: else the ranking abstains), else in process with numpy
    (:func:`ranking_server`); reported as the registry's version (``cst-rank/v<N>``)."""
    from cryptosmarttrader.adapters.model_registry_sagemaker import sagemaker_client
    from cryptosmarttrader.adapters.ranking_bundle import artifact_model

    ml = MlSettings()

    def load(live: ModelVersion, artifact: bytes) -> RankingModel:
        model = artifact_model(artifact)
        model = replace(model, evaluation={**model.evaluation, "version": live.label})
        return ranking_server(
            model,
            ml.ranking_endpoint,
            lambda: sagemaker_runtime_client(resources.region, resources.aws_endpoint_url),
            version=live.version,
            artifact=artifact,
            sagemaker=lambda: sagemaker_client(resources),
        )

    return PromotedRanking(ranking_registry(ml, resources, clients), clock, load)


def promoted_model(
    clients: AwsClients, resources: AwsResources, clock: Clock
) -> RankingModel | None:
    """The production version of the ranking model group as one scan serves it
    (:class:`PromotedRanking`); None when no version is promoted. A damaged artefact or a
    registry error raises: never a silent fallback."""
    return promoted_ranking(clients, resources, clock).current()


def excluded_coins(market: RecordedMarketData) -> dict[str, str]:
    """Coins that are not growth candidates, with the reason: stablecoins, wrapped and bridged
    representations, lending receipts, staking derivatives, trackers (domain.universe)."""
    return {
        coin_id: reason
        for coin_id, meta in market.coins_metadata().items()
        if (reason := meta.exclusion) is not None
    }


def scan_model(
    settings: TradingSettings, explicit: Path | None = None
) -> TrainedModel | RankingModel | None:
    """The model from --model / CST_MODEL_DIR: a ranking model (``cst evaluate --save-model``,
    served with the evaluation that judged it) or a legacy fitted ensemble; None means
    technical agent only."""
    directory = explicit or settings.model_dir
    if directory is None:
        return None
    if not directory.is_dir():
        raise ValueError(
            f"model directory {directory} does not exist (cst evaluate --save-model DIR, or "
            "cst model pull-production DIR, writes one)"
        )
    from cryptosmarttrader.adapters.ranking_bundle import is_ranking_bundle, load_ranking_bundle

    if is_ranking_bundle(directory):
        return load_ranking_bundle(directory)
    from cryptosmarttrader.adapters.model_bundle import load_bundle

    return load_bundle(directory)


def recorded_analyzer(
    data_dir: Path,
    clock: Clock,
    settings: TradingSettings,
    model: TrainedModel | RankingModel | None = None,
) -> ScanAnalyzer:
    """The scan over the recorded data. ``tradable``: only coins the paper venue can fill and
    value are ranked; ``all`` (research): every coin is ranked, and BUYs on coins the venue
    cannot trade are reported, never recorded as orders. Its history replay takes the
    point-in-time universe from ``cmc_monthly/`` when the data holds it (the ranking model's
    universe). The agents see, as of the scan, the recorded funding, mark and KuCoin prices and
    the Fear & Greed index beside the universe (``RecordedAgentData``)."""
    market = RecordedMarketData(data_dir)
    excluded = excluded_coins(market)
    try:
        untradable = untradable_coins(market, settings.execution_timeframe)
    except DataSourceError as exc:
        if settings.universe == "tradable":
            raise ValueError(
                f"the tradable universe needs the recorded exchange candles: {exc}; "
                "pass --universe all (CST_UNIVERSE=all) to rank the research universe"
            ) from exc
        untradable = frozenset(market.coins_metadata())  # no candles: nothing can be traded
    if settings.universe == "tradable":
        reason = f"no unambiguous recorded exchange pair at {settings.execution_timeframe}"
        for coin in untradable:
            excluded.setdefault(coin, reason)
    return ScanAnalyzer(
        market=market,
        clock=clock,
        settings=settings,
        excluded_symbols=excluded,
        model=model,
        untradable=untradable,
        membership=load_pit_membership(data_dir),
        agent_data=RecordedAgentData(market),
    )


def untradable_coins(market: RecordedMarketData, timeframe: str) -> frozenset[str]:
    """Coins without an unambiguous recorded exchange pair at ``timeframe``: the paper venue
    could neither fill nor value them."""
    pairs = set(market.available_pairs(timeframe))
    out: set[str] = set()
    for coin in market.coins_metadata():
        try:
            tradable = market.pair_of(coin) in pairs
        except ValueError:
            tradable = False
        if not tradable:
            out.add(coin)
    return frozenset(out)


def scan_service(
    analyzer: ScanAnalyzer,
    clients: AwsClients,
    resources: AwsResources,
    metrics: Metrics,
    slis: SliRecorder | None = None,
) -> ScanService:
    state = DynamoStateStore(resources.state_table, clients.dynamodb)
    switch = SsmKillSwitch(resources.kill_switch_param, clients.ssm, analyzer.clock)
    risk = RiskStateService(state, switch, analyzer.clock)
    return ScanService(
        analyzer=analyzer,
        orders=DynamoOrderStore(resources.orders_table, clients.dynamodb),
        positions=DynamoPositionStore(resources.positions_table, clients.dynamodb),
        kill_switch=switch,
        metrics=metrics,
        signals=DynamoSignalStore(state),
        risk_state=lambda: risk.load().level,
        slis=slis,
    )


def trading_cycle(
    market: MarketData,
    clock: Clock,
    clients: AwsClients,
    resources: AwsResources,
    settings: TradingSettings,
    metrics: Metrics,
    slis: SliRecorder | None = None,
    *,
    real_venue: CcxtVenue | None = None,
    paper: bool = False,
) -> TradingCycle:
    """The execution function's cycle: the scan's decisions through the RiskGuard to the venue
    of ``CST_VENUE_MODE`` (the paper venue, its book in the state table, filling on ``market``'s
    real bars; or the ccxt venue of a testnet / live deployment, docs/venues.md), fills into
    positions, the account valued and the risk level moved. ``real_venue``: a ccxt venue built
    by the caller (`cst execute --venue testnet|live`, keys from the operator's machine) instead
    of the deployment's; everything else (RiskGuard, kill-switch, reconciliation) is the same.
    ``paper``: the paper venue whatever ``CST_VENUE_MODE`` says (`cst execute --venue paper`)."""
    state = DynamoStateStore(resources.state_table, clients.dynamodb)
    switch = SsmKillSwitch(resources.kill_switch_param, clients.ssm, clock)
    risk = RiskStateService(state, switch, clock)
    venue_settings = VenueSettings()
    if real_venue is not None:
        mode = real_venue.mode.value
    else:
        mode = "paper" if paper else venue_settings.venue_mode
    venue: OrderGateway
    account: BalanceSource | None = None  # a real account, reconciled every cycle
    if real_venue is not None:
        venue = account = real_venue
    elif mode == "paper":
        venue = PaperExchange(
            market,
            clock,
            timeframe=settings.execution_timeframe,
            book=StatePaperBook(state),
            max_wait=timedelta(minutes=settings.paper_max_wait_minutes),
            capabilities=paper_capabilities(ExchangeId(settings.exchange)),
        )
    else:  # testnet / live: real orders through ccxt (docs/venues.md)
        from cryptosmarttrader.venues import execution_venue

        venue = account = execution_venue(
            venue_settings, settings.exchange, clock, state, resources
        )
    orders = DynamoOrderStore(resources.orders_table, clients.dynamodb)
    execution = ExecutionService(
        orders=orders,
        positions=DynamoPositionStore(resources.positions_table, clients.dynamodb),
        kill_switch=switch,
        risk=risk,
        exchange=venue,
        clock=clock,
        metrics=metrics,
        guard=RiskGuard(RiskLimits(Decimal(str(settings.max_asset_fraction)))),
        prepare=lambda: ensure_open_index(orders, state, clock.now()),
        mode=mode,
        dust_value=Decimal(str(settings.dust_value_usd)),
    )
    return TradingCycle(
        execution=execution,
        risk=risk,
        market=market,
        metrics=metrics,
        starting_equity=Decimal(str(settings.equity_usd)),
        timeframe=settings.execution_timeframe,
        slis=slis,
        exit_rule=settings.exit_rule,
        balances=account,
        quote_asset=spot_quote(settings.exchange),
        commission_assets=COMMISSION_ASSETS.get(settings.exchange, frozenset()),
    )


def rollback_sweep(
    clock: Clock,
    clients: AwsClients,
    resources: AwsResources,
    settings: TradingSettings,
    metrics: Metrics,
    *,
    real_venue: CcxtVenue | None = None,
) -> Callable[[], ExecutionService] | None:
    """The go-live rollback's order step on the deployment's venue (``CST_VENUE_MODE``): None
    on the paper venue (its cancel is acknowledged at once: the rollback cancels in the order
    store); on testnet / live a builder of the execution service on the ccxt venue, whose
    kill-switch sweep cancels at the venue (:meth:`GoLiveService.cancel_open_orders`). The
    venue is built when the step runs, never at import (keys read then). ``real_venue``: a
    ccxt venue built by the caller (`cst golive rollback --venue testnet|live`, keys from the
    operator's machine, as `cst execute` builds it) instead of the deployment's."""
    venue_settings = VenueSettings()
    if real_venue is None and venue_settings.venue_mode == "paper":
        return None
    mode = venue_settings.venue_mode if real_venue is None else real_venue.mode.value

    def build() -> ExecutionService:
        from cryptosmarttrader.venues import execution_venue

        state = DynamoStateStore(resources.state_table, clients.dynamodb)
        switch = SsmKillSwitch(resources.kill_switch_param, clients.ssm, clock)
        venue = real_venue or execution_venue(
            venue_settings, settings.exchange, clock, state, resources, cancels_only=True
        )
        orders = DynamoOrderStore(resources.orders_table, clients.dynamodb)
        ensure_open_index(orders, state, clock.now())  # the sweep reads the open-orders index
        return ExecutionService(
            orders=orders,
            positions=DynamoPositionStore(resources.positions_table, clients.dynamodb),
            kill_switch=switch,
            risk=RiskStateService(state, switch, clock),
            exchange=venue,
            clock=clock,
            metrics=metrics,
            mode=mode,
            dust_value=Decimal(str(settings.dust_value_usd)),
        )

    return build

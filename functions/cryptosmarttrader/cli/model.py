"""`cst model train|fit-ensemble|list|promote|rollback|drift|canary`: the ML lifecycle on the embedded local AWS.

``train`` exports the recorded real bars up to ``--train-end`` (stablecoins and wrapped tokens
removed) as the ``train`` channel, runs ``ml/train.py`` — the SageMaker script-mode entry point —
as a subprocess with the SM_* variables a training job gets, and registers the result in the
embedded registry (S3 + DynamoDB on moto; state under ``--state-dir``). ``canary`` runs the
same steps as the model-canary state machine, in order, without Step Functions.
"""

from __future__ import annotations

import getpass
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from cryptosmarttrader.cli._common import fail, parse_day, state_dir
from cryptosmarttrader.cli._progress import show_progress, working
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    import polars as pl

    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.services.model_registry import ModelRegistryService
    from cryptosmarttrader.services.training_launcher import TrainingParams
    from cst_devtools.local_aws import LocalAws

# polars, xgboost, boto3/moto and the services are imported inside the commands that need them.
REPO_ROOT = Path(__file__).resolve().parents[3]

app = typer.Typer(
    name="model",
    help="ML lifecycle: walk-forward training, registry, promotion, rollback, drift, canary.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
TRAIN_SCRIPT = REPO_ROOT / "ml" / "train.py"
SERVING_SCRIPT = REPO_ROOT / "ml" / "inference.py"

StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."),
]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Recorded data (CST_DATA_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")]


RANKING_GROUP = "cst-rank"
GroupOpt = Annotated[
    str | None,
    typer.Option(
        "--group", help="Model group (default CST_MODEL_GROUP; ranking models: cst-rank)."
    ),
]


def _registry(aws: LocalAws, group: str | None = None) -> ModelRegistryService:
    from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.services.model_registry import ModelRegistryService
    from cryptosmarttrader.settings import MlSettings

    settings = MlSettings()
    store = EmbeddedModelRegistry(
        group or settings.model_group,
        bucket=settings.model_bucket or aws.resources.lake_bucket,
        table=aws.resources.state_table,
        s3=aws.s3,
        dynamodb=aws.dynamodb,
        prefix=settings.model_prefix,
    )
    return ModelRegistryService(store, SystemClock())


@contextmanager
def _registry_service(
    state: Path | None, group: str | None = None
) -> Iterator[ModelRegistryService]:
    """The embedded local registry (default), or — with ``CST_MODEL_REGISTRY=sagemaker`` — the
    SageMaker Model Registry of the account (or ``AWS_ENDPOINT_URL``), redeploying
    ``CST_MODEL_ENDPOINT`` on promote and rollback when it is set; ``--group cst-rank`` on AWS
    is the stack's ranking registry (the one its scan reads), deploying
    ``CST_RANKING_ENDPOINT`` when it is set."""
    from cryptosmarttrader.adapters.aws_clients import AwsClients
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.settings import AwsResources, MlSettings
    from cst_devtools.local_aws import embedded_aws

    settings = MlSettings()
    if settings.model_registry == "embedded":
        with embedded_aws(state_dir(state)) as aws:
            yield _registry(aws, group)
        return
    from cryptosmarttrader.wiring import registry_service  # the scan's wiring: AWS only

    resources = AwsResources()
    yield registry_service(
        settings,
        resources,
        AwsClients.build(resources),
        SystemClock(),
        serving_code=SERVING_SCRIPT.read_bytes(),
        group=group,
    )


def _market(data: Path | None) -> RecordedMarketData:
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.wiring import DataSourceUnavailableError, resolve_data_dir

    try:
        return RecordedMarketData(resolve_data_dir(data))
    except DataSourceUnavailableError as exc:
        fail(str(exc))


@app.command("train")
def train(
    train_end: Annotated[str, typer.Option("--train-end", help="Last day a label may end.")],
    first_day: Annotated[str | None, typer.Option("--first-day")] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days")] = 30,
    threshold: Annotated[float, typer.Option("--threshold")] = 0.5,
    features: Annotated[str | None, typer.Option("--features", help="Comma list.")] = None,
    rounds: Annotated[int, typer.Option("--rounds")] = 200,
    on: Annotated[
        str, typer.Option("--on", help="local (default): a subprocess; sagemaker: a training job.")
    ] = "local",
    data: DataOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train with ml/train.py (walk-forward, purge + embargo) and register the version."""
    end = parse_day(train_end, "--train-end")
    if on not in {"local", "sagemaker"}:
        fail(f"--on must be local or sagemaker, got {on!r}")
    import polars as pl

    from cryptosmarttrader.domain.drift import DriftReference
    from cryptosmarttrader.domain.model_canary import ModelCard
    from cryptosmarttrader.services.training_launcher import TrainingParams
    from cryptosmarttrader.wiring import excluded_coins
    from cst_devtools.local_aws import embedded_aws

    market = _market(data)
    daily = market.daily_all().filter(
        ~pl.col("symbol").is_in(list(excluded_coins(market)))
        & (pl.col("ts") < int(end.timestamp() * 1000) + 86_400_000)
    )
    if on == "sagemaker":
        params = TrainingParams(
            train_end=end.date(),
            first_day=parse_day(first_day, "--first-day").date() if first_day else None,
            horizon_days=horizon_days,
            threshold=threshold,
            rounds=rounds,
            features=tuple(f for f in (features or "").split(",") if f),
            git_commit=_git_commit(),
        )
        _train_on_sagemaker(params, daily, as_json)
        return
    with tempfile.TemporaryDirectory(prefix="cst-train-") as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        daily.write_parquet(root / "train" / "daily.parquet")
        args = [sys.executable, str(TRAIN_SCRIPT), "--train-end", end.date().isoformat(),
                "--horizon-days", str(horizon_days), "--threshold", str(threshold),
                "--rounds", str(rounds)]  # fmt: skip
        if first_day:
            args += ["--first-day", parse_day(first_day, "--first-day").date().isoformat()]
        if features:
            args += ["--features", features]
        env = os.environ | {
            "SM_CHANNEL_TRAIN": str(root / "train"),
            "SM_MODEL_DIR": str(root / "model"),
            "SM_OUTPUT_DATA_DIR": str(root / "output"),
        }
        with working("training (ml/train.py, walk-forward folds)", show_progress(as_json)):
            result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            fail(f"ml/train.py failed: {result.stderr.strip().splitlines()[-1:]}")
        card = ModelCard.model_validate_json((root / "model" / "card.json").read_text())
        reference = DriftReference.model_validate_json(
            (root / "model" / "reference.json").read_text()
        )
        artifact = (root / "model" / "model.json").read_bytes()
    with embedded_aws(state_dir(state)) as aws:
        version = _registry(aws).register(card, artifact, reference)
    from cryptosmarttrader.domain.model_canary import skill_gate

    promotable, why = skill_gate(card.skill)
    out = {"version": version.version, "stage": str(version.stage),
           "oos": card.oos.model_dump(mode="json"), "folds": len(card.folds),
           "skill": None if card.skill is None else card.skill.model_dump(mode="json"),
           "promotable": promotable, "skill_gate": why}  # fmt: skip
    if as_json:
        typer.echo(jsonout.dumps(out))
        return
    console.print(
        f"registered {version.label}: walk-forward OOS AUC {card.oos.auc}, "
        f"lift@20 {card.oos.lift}, {len(card.folds)} folds, {card.train_rows} rows\n"
        f"skill gate: {'promotable' if promotable else 'not promotable'}: {why}",
        markup=False,
    )


def _git_commit() -> str:
    """This checkout's HEAD (``-dirty`` with uncommitted changes), as ml/train.py records it:
    the job has no checkout, so the launcher passes it as ``--git-commit``."""
    git = ["git", "-C", str(REPO_ROOT)]

    def run(*args: str) -> str:
        done = subprocess.run([*git, *args], capture_output=True, text=True, check=True)  # noqa: S603 - fixed git arguments
        return done.stdout.strip()

    try:
        head = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def _train_on_sagemaker(params: TrainingParams, daily: pl.DataFrame, as_json: bool) -> None:
    """Start a SageMaker training job of ml/train.py, wait for it, register its model."""
    from cryptosmarttrader.adapters.aws_clients import AwsClients
    from cryptosmarttrader.adapters.model_registry_sagemaker import sagemaker_client
    from cryptosmarttrader.adapters.sagemaker_training import (
        SageMakerTrainingJobs,
        source_dir_tarball,
        training_image_uri,
    )
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.services.model_lifecycle import LifecycleError
    from cryptosmarttrader.services.model_registry import ModelRegistryError
    from cryptosmarttrader.services.training_launcher import TrainingLauncher
    from cryptosmarttrader.settings import AwsResources, MlSettings
    from cryptosmarttrader.wiring import registry_service

    settings, resources = MlSettings(), AwsResources()
    if settings.model_registry != "sagemaker" or not settings.model_role_arn:
        fail("--on sagemaker needs CST_MODEL_REGISTRY=sagemaker and CST_MODEL_ROLE_ARN")
    clients = AwsClients.build(resources)
    clock = SystemClock()
    registry = registry_service(
        settings, resources, clients, clock, serving_code=SERVING_SCRIPT.read_bytes()
    )
    launcher = TrainingLauncher(
        SageMakerTrainingJobs(
            sagemaker_client(resources), clients.s3, settings.model_bucket or resources.lake_bucket
        ),
        registry,
        clock,
        image_uri=settings.training_image_uri or training_image_uri(resources.region),
        role_arn=settings.model_role_arn,
    )
    channel = io.BytesIO()
    daily.write_parquet(channel)
    name = launcher.start(params, source_dir_tarball(REPO_ROOT), channel.getvalue())
    console.print(f"training job {name} started; waiting for it to end")
    try:
        with working(f"SageMaker training job {name}", show_progress(as_json)):
            version = launcher.wait(name)
    except (LifecycleError, ModelRegistryError) as exc:
        fail(str(exc))
    card = version.card
    out = {"version": version.version, "stage": str(version.stage), "job": name,
           "oos": card.oos.model_dump(mode="json"), "folds": len(card.folds)}  # fmt: skip
    if as_json:
        typer.echo(jsonout.dumps(out))
        return
    console.print(f"registered {version.label} from {name}: walk-forward OOS AUC {card.oos.auc}")


def _row(v: Any) -> dict[str, Any]:
    from cryptosmarttrader.domain.model_canary import skill_gate

    return {
        "version": v.version,
        "stage": str(v.stage),
        "train_end": v.card.train_end.isoformat(),
        "features": len(v.card.features),
        "oos_auc": v.card.oos.auc,
        "oos_lift": v.card.oos.lift,
        "drift_blocked": v.drift_blocked,
        "promotable": skill_gate(v.card.skill)[0],  # the skill gate (see `cst model promote`)
        "git_commit": v.card.git_commit[:12],
        "last_change": v.history[-1].reason if v.history else "",
    }


@app.command("fit-ensemble")
def fit_ensemble(
    directory: Annotated[Path, typer.Argument(help="Write the bundle here (cst scan --model).")],
    train_end: Annotated[
        str, typer.Option("--train-end", help="Nothing after this day is used to fit.")
    ],
    first_decision: Annotated[
        str, typer.Option("--first-decision", help="First decision day of the fit.")
    ] = "2018-01-01",
    step_days: Annotated[
        int, typer.Option("--step-days", min=1, help="Days between decision days.")
    ] = 21,
    data: DataOpt = None,
) -> None:
    """Fit the calibrated ensemble (every directional agent + the ML agent) walk-forward on the
    recorded data up to --train-end and save it for `cst scan --model DIR`: the scan then shows
    all nine agents' votes. Each replayed day gives the funding, arbitrage and sentiment agents
    the recorded side data as the scan reads it as of that day; nothing after --train-end is
    read."""
    from datetime import timedelta

    from cryptosmarttrader.adapters.model_bundle import save_bundle
    from cryptosmarttrader.adapters.recorded_agent_data import RecordedAgentData
    from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer
    from cryptosmarttrader.services.evaluate import (
        DIRECTIONAL_AGENTS,
        EvaluationConfig,
        registry_agents,
    )
    from cryptosmarttrader.services.evaluate import (
        fit_ensemble as fit,
    )
    from cryptosmarttrader.wiring import excluded_coins

    end_day = parse_day(train_end).date()
    market = _market(data)
    try:
        start = end_day + timedelta(days=15)  # the config's test period: not read by the fit
        cfg = EvaluationConfig(
            train_end=end_day,
            start=start,
            end=start + timedelta(days=16),
            first_decision=parse_day(first_decision).date(),
            step_days=step_days,
        )
        with working(f"fitting the ensemble on data up to {end_day}", show_progress()):
            fitted = fit(
                market,
                XgbTrainer(),
                cfg,
                excluded_symbols=excluded_coins(market),
                agents=registry_agents,
                agent_names=DIRECTIONAL_AGENTS,
                agent_data=RecordedAgentData(market),
            )
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if not isinstance(fitted.ml_final, XgbPredictor):
        fail("the fit produced no XGBoost ML agent to save")
    save_bundle(
        directory,
        fitted.ensemble,
        fitted.ml_final.to_bytes(),
        fitted.ml_final.feature_names,
        {"train_end": end_day.isoformat(), "calibration": cfg.calibration},
    )
    stacker = fitted.ensemble.stacker
    voted = ", ".join(
        f"{agent} {n}" for agent, n in zip(stacker.agents, stacker.voted_rows, strict=True)
    )
    console.print(
        f"ensemble fitted on data up to {end_day} saved to {directory} "
        f"(agents: {', '.join(fitted.ensemble.agents)}); training rows each agent voted on, "
        f"of {stacker.training_rows}: {voted}",
        markup=False,
    )


@app.command("list")
def list_versions(state: StateOpt = None, as_json: JsonOpt = False, group: GroupOpt = None) -> None:
    """Every registered version with its stage and out-of-sample metrics."""
    with _registry_service(state, group) as service:
        rows = [_row(v) for v in service.versions()]
    if as_json:
        typer.echo(jsonout.dumps(rows))
        return
    from rich.table import Table

    table = Table(*rows[0].keys()) if rows else Table("no versions registered")
    for r in rows:
        table.add_row(*(str(x) for x in r.values()))
    console.print(table)


@app.command("promote")
def promote(
    version: int, reason: ReasonOpt, state: StateOpt = None, group: GroupOpt = None
) -> None:
    """Make VERSION the production model (the previous one is archived); on SageMaker with
    CST_MODEL_ENDPOINT set, the endpoint is redeployed to serve it. A version registered with
    a walk-forward evaluation is refused unless it clears the skill gate."""
    from cryptosmarttrader.domain.model_canary import IllegalStageTransitionError
    from cryptosmarttrader.services.model_registry import ModelRegistryError

    with _registry_service(state, group) as service:
        try:
            done = service.promote(version, reason, getpass.getuser())
        except (ModelRegistryError, IllegalStageTransitionError) as exc:
            fail(str(exc))
    console.print(f"{done.label} is in production")


@app.command("register-ranking")
def register_ranking(
    bundle: Annotated[Path, typer.Argument(help="Directory written by cst evaluate --save-model.")],
    state: StateOpt = None,
    group: GroupOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a ranking model with the walk-forward evaluation that judged it (the skill gate
    reads it at promotion)."""
    from cryptosmarttrader.adapters.ranking_bundle import (
        RankingBundleError,
        bundle_artifact,
        bundle_evaluation,
        bundle_reference,
        load_ranking_bundle,
    )
    from cryptosmarttrader.domain.model_canary import skill_gate
    from cryptosmarttrader.services.skill_evaluation import ranking_card, ranking_feature_hash

    try:
        artifact = bundle_artifact(bundle)
        reference = bundle_reference(bundle)
        evaluation = bundle_evaluation(bundle)
        signals = load_ranking_bundle(bundle).signals
    except RankingBundleError as exc:
        fail(str(exc))
    card = ranking_card(
        evaluation,
        signals=signals,
        group=group or RANKING_GROUP,
        created_at=datetime.now(UTC),
        feature_hash=ranking_feature_hash(signals),
        git_commit=_git_commit(),
    )
    with _registry_service(state, group or RANKING_GROUP) as service:
        version = service.register(card, artifact, reference)
    ok, why = skill_gate(card.skill)
    row = {"version": version.label, "promotable": ok, "skill_gate": why}
    if as_json:
        typer.echo(jsonout.dumps(row))
    else:
        console.print(
            f"{version.label} registered; {'promotable' if ok else 'NOT promotable'}: {why}"
        )


@app.command("pull-production")
def pull_production(
    directory: Annotated[Path, typer.Argument(help="Where the scan reads its model (--model).")],
    state: StateOpt = None,
    group: GroupOpt = None,
) -> None:
    """Write the promoted ranking model, byte for byte, where the scan serves it from."""
    from cryptosmarttrader.adapters.ranking_bundle import (
        RankingBundleError,
        write_bundle_from_artifact,
    )
    from cryptosmarttrader.domain.model_canary import skill_gate
    from cryptosmarttrader.ports import RegistryStoreError
    from cryptosmarttrader.services.model_registry import ModelRegistryError

    with _registry_service(state, group or RANKING_GROUP) as service:
        try:
            live = service.production()
        except (RegistryStoreError, ModelRegistryError) as exc:
            fail(f"the production version cannot be read: {exc}: nothing written")
        if live is None:
            fail(f"{group or RANKING_GROUP} has no production version")
        ok, why = skill_gate(live.card.skill)
        if not ok:
            fail(f"{live.label} no longer clears the skill gate: {why}")
        try:
            artifact = service.registry.checked_artifact(live)
        except RegistryStoreError as exc:
            fail(f"{exc}: nothing written")
        try:
            write_bundle_from_artifact(directory, artifact)
        except RankingBundleError as exc:
            fail(str(exc))
    console.print(f"{live.label} written to {directory} (cst scan --model {directory})")


@app.command("rollback")
def rollback(reason: ReasonOpt, state: StateOpt = None, group: GroupOpt = None) -> None:
    """Reject the production model and restore the previously archived one (and redeploy it)."""
    from cryptosmarttrader.services.model_registry import ModelRegistryError

    with _registry_service(state, group) as service:
        try:
            rejected, restored = service.rollback(reason, getpass.getuser())
        except ModelRegistryError as exc:
            fail(str(exc))
    console.print(
        f"{rejected.label} rejected; "
        + (f"{restored.label} restored" if restored else "no archived version to restore")
    )


@app.command("drift")
def drift(
    asof: Annotated[str, typer.Option("--asof")],
    version: Annotated[int | None, typer.Option("--version")] = None,
    data: DataOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """PSI / KS of features and predictions and calibration decay, as the drift Lambda."""
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.sagemaker_predictor import TreeEnsemblePredictor
    from cryptosmarttrader.services.model_lifecycle import DriftService, LifecycleError
    from cryptosmarttrader.services.model_registry import ModelRegistryError
    from cryptosmarttrader.wiring import excluded_coins
    from cst_devtools.local_aws import embedded_aws

    market = _market(data)
    with embedded_aws(state_dir(state)) as aws:
        service = DriftService(
            _registry(aws), market, TreeEnsemblePredictor.from_bytes, InMemoryMetrics(),
            excluded=excluded_coins(market),
        )  # fmt: skip
        try:
            outcome = service.check(parse_day(asof), version)
        except (LifecycleError, ModelRegistryError) as exc:
            fail(str(exc))
    r = outcome.report
    out = {
        "version": outcome.version.version,
        "status": r.status,
        "alarms": list(r.alarms),
        "notes": list(r.notes),
        "drifted_share": r.drifted_share,
        "prediction_psi": r.prediction.psi if r.prediction else None,
        "calibration_decay": r.calibration.decay if r.calibration else None,
    }
    if as_json:
        typer.echo(jsonout.dumps(out, default=str))
        return
    console.print(out)


@app.command("canary")
def canary(
    version: int,
    asof: Annotated[str, typer.Option("--asof")],
    data: DataOpt = None,
    state: StateOpt = None,
) -> None:
    """Shadow → gate → canary share → gate → promote, else rollback (the state machine's steps)."""
    from cryptosmarttrader.adapters.sagemaker_predictor import TreeEnsemblePredictor
    from cryptosmarttrader.domain.model_canary import IllegalStageTransitionError, ModelStage
    from cryptosmarttrader.services.model_lifecycle import CanaryService, LifecycleError
    from cryptosmarttrader.services.model_registry import ModelRegistryError
    from cryptosmarttrader.wiring import excluded_coins
    from cst_devtools.local_aws import embedded_aws

    market = _market(data)
    when = parse_day(asof)
    with embedded_aws(state_dir(state)) as aws:
        svc = CanaryService(
            _registry(aws), market, TreeEnsemblePredictor.from_bytes,
            excluded=excluded_coins(market),
        )  # fmt: skip
        try:
            svc.start(version, "shadow", "cli canary: shadow")
            for stage in ("shadow", "canary"):
                evaluation = svc.evaluate(version, when)
                console.print(f"{stage} gate: {evaluation.decision.verdict} {evaluation.scores}")
                if evaluation.decision.verdict == "rollback":
                    svc.rollback(version, "; ".join(evaluation.decision.reasons))
                    fail(f"v{version} rolled back: {'; '.join(evaluation.decision.reasons)}", 1)
                if stage == "shadow":
                    svc.start(version, "canary", "cli canary: passed the shadow gate")
            done = svc.promote(version, "cli canary: beat the incumbent")
        except (LifecycleError, ModelRegistryError) as exc:
            # as the state machine does: a failed step rolls back a candidate it had started
            try:
                started = svc.registry.get(version).stage in (ModelStage.SHADOW, ModelStage.CANARY)
            except ModelRegistryError:
                started = False  # no such version: nothing to roll back
            if not started:
                fail(str(exc))
            svc.rollback(version, str(exc).splitlines()[0])
            fail(f"v{version} rolled back: {exc}")
        except IllegalStageTransitionError as exc:
            fail(str(exc))
    console.print(f"{done.label} promoted at {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC")

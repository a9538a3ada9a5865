"""`cst evaluate`: honest walk-forward evaluation on the recorded real data (typer sub-app)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import plotly.graph_objects as go
import polars as pl
import typer
from plotly.subplots import make_subplots
from pydantic import ValidationError

from cryptosmarttrader.adapters.model_bundle import save_bundle
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer
from cryptosmarttrader.cli._common import err_console, fail, parse_day
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.agents.regime import regime_timeline
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.services.evaluate import (
    DIRECTIONAL_AGENTS,
    EvaluationConfig,
    EvaluationError,
    EvaluationResult,
    evaluate,
    registry_agents,
)
from cryptosmarttrader.wiring import excluded_coins, resolve_data_dir

# Mounted by the root app as ``app.add_typer(evaluate.app, name="evaluate")`` → `cst evaluate ...`
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def evaluate_cmd(
    train_end: Annotated[
        str, typer.Option("--train-end", help="Last day whose information may be fitted on.")
    ],
    start: Annotated[str, typer.Option("--start", help="First reported decision day.")],
    end: Annotated[str, typer.Option("--end", help="Last reported decision day.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, max=730)] = 180,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000)] = 20,
    step_days: Annotated[
        int, typer.Option("--step-days", min=1, help="Days between decision days.")
    ] = 7,
    calibration: Annotated[str, typer.Option("--calibration", help="platt or isotonic.")] = "platt",
    fold_days: Annotated[
        int, typer.Option("--fold-days", min=7, help="Walk-forward test block length (days).")
    ] = 182,
    first_decision: Annotated[
        str, typer.Option("--first-decision", help="First decision day of the history replay.")
    ] = "2014-01-01",
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report (plotly) here.")
    ] = None,
    save_model: Annotated[
        Path | None,
        typer.Option(
            "--save-model",
            help="Write the fitted ensemble + ML model (primary target) here, for cst scan --model.",
        ),
    ] = None,
) -> None:
    """Walk-forward evaluation: purge + embargo, nothing after --train-end is fitted on; precision@k,
    lift, base rate, AUC, Brier, ECE, and a top-k portfolio after fees and slippage beside
    btc_buy_hold, equal_weight and momentum_90d. The data has survivorship bias (stated in the
    output)."""
    if calibration not in ("platt", "isotonic"):
        fail(f"--calibration must be platt or isotonic, got {calibration!r}")
    method: Literal["platt", "isotonic"] = "platt" if calibration == "platt" else "isotonic"
    try:
        cfg = EvaluationConfig(
            train_end=_date(train_end, "--train-end"),
            start=_date(start, "--start"),
            end=_date(end, "--end"),
            horizon_days=horizon_days,
            top_k=top_k,
            step_days=step_days,
            first_decision=_date(first_decision, "--first-decision"),
            fold_days=fold_days,
            calibration=method,
        )
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"])
    try:
        market = RecordedMarketData(resolve_data_dir(data))
        result = evaluate(
            market,
            XgbTrainer(),
            cfg,
            excluded_symbols=excluded_coins(market),
            agents=registry_agents,
            agent_names=DIRECTIONAL_AGENTS,
            regime_timeline=regime_timeline,
        )
    except (EvaluationError, ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if report is not None:
        write_report(result, report)
    if save_model is not None:
        _save_model(result, cfg, save_model)
    if as_json:
        typer.echo(jsonout.dumps(result.summary, indent=2))
    else:
        _print_summary(result)


def _save_model(result: EvaluationResult, cfg: EvaluationConfig, directory: Path) -> None:
    fitted = result.fitted[cfg.primary_threshold]
    if not isinstance(fitted.ml_final, XgbPredictor):
        fail("--save-model needs the XGBoost ML agent")
    save_bundle(
        directory,
        fitted.ensemble,
        fitted.ml_final.to_bytes(),
        fitted.ml_final.feature_names,
        {
            "train_end": cfg.train_end.isoformat(),
            "target": fitted.ensemble.target,
            "calibration": cfg.calibration,
            "fit_rows": fitted.fit_rows,
            "ensemble_oos_rows": fitted.ensemble_oos_rows,
            "horizon_days": cfg.horizon_days,
        },
    )
    err_console.print(f"model saved to {directory} (use: cst scan --model {directory})")


def _date(value: str, option: str) -> date:
    return parse_day(value, option).date()


def _print_summary(result: EvaluationResult) -> None:
    s = result.summary
    for target, m in s["targets"].items():
        typer.echo(
            f"{target}: base rate {m['base_rate']:.3f}  precision@k {m['precision_at_k']:.3f}  "
            f"lift {m['lift']:.2f}  AUC {m['auc']:.3f}  Brier {m['brier']:.3f}  ECE {m['ece']:.3f}"
        )
    for name, p in {**s["portfolio"], **s["baselines"]}.items():
        typer.echo(
            f"{name:>14}: return {p['total_return']:+.1%}  max DD {p['max_drawdown']:.1%}  "
            f"Sharpe {p['sharpe'] if p['sharpe'] is not None else float('nan'):.2f}"
        )
    typer.echo(s["data"]["survivorship_bias"])


def write_report(result: EvaluationResult, path: Path) -> None:
    """Equity curves, calibration curve, hit rate by score decile, regime timeline."""
    s = result.summary
    fig = make_subplots(
        rows=4,
        cols=1,
        subplot_titles=(
            "Equity after fees and slippage (log scale)",
            "Calibration on the reported period (primary target)",
            "Hit rate by score decile (10 = highest scores)",
            "Market regime",
        ),
        vertical_spacing=0.07,
    )
    eq = result.equity.with_columns(
        date=pl.from_epoch(pl.col("day") * DAY_MS, time_unit="ms").dt.date()
    )
    for name in eq["strategy"].unique(maintain_order=True).to_list():
        part = eq.filter(pl.col("strategy") == name)
        fig.add_trace(
            go.Scatter(x=part["date"].to_list(), y=part["equity"].to_list(), name=name),
            row=1,
            col=1,
        )
    fig.update_yaxes(type="log", row=1, col=1)
    cal = result.calibration
    fig.add_trace(
        go.Scatter(
            x=cal["mean_prob"].to_list(),
            y=cal["hit_rate"].to_list(),
            mode="lines+markers",
            name="calibration",
            text=[f"n={n}" for n in cal["n"].to_list()],
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot"}),
        row=2,
        col=1,
    )
    dec = result.deciles
    fig.add_trace(
        go.Bar(x=dec["decile"].to_list(), y=dec["hit_rate"].to_list(), name="hit rate"),
        row=3,
        col=1,
    )
    regime_note = "regime timeline missing: domain/agents/regime.py not available"
    if result.regimes is not None and "regime" in result.regimes.columns:
        reg = result.regimes.with_columns(
            date=pl.from_epoch("ts", time_unit="ms").dt.date(),
            regime=pl.col("regime").cast(pl.String).fill_null("unknown"),
        )
        fig.add_trace(
            go.Scatter(
                x=reg["date"].to_list(),
                y=reg["regime"].to_list(),
                mode="markers",
                name="regime",
                marker={"size": 4},
            ),
            row=4,
            col=1,
        )
        regime_note = "regime: domain/agents/regime.py (market-cap-weighted index)"
    cfg = s["config"]
    metrics = " · ".join(
        f"{t}: p@{cfg['top_k']} {m['precision_at_k']:.3f}, base {m['base_rate']:.3f}, "
        f"lift {m['lift']:.2f}, AUC {m['auc']:.3f}, Brier {m['brier']:.3f}, ECE {m['ece']:.3f}"
        for t, m in s["targets"].items()
    )
    fig.update_layout(
        height=1500,
        title={
            "text": (
                f"CryptoSmartTrader walk-forward: train-end {cfg['train_end']}, reported "
                f"{cfg['start']}..{cfg['end']}, horizon {cfg['horizon_days']} d<br>"
                f"<sup>{metrics}</sup><br><sup>{s['data']['survivorship_bias']}</sup><br>"
                f"<sup>{regime_note}</sup>"
            )
        },
        margin={"t": 200},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fig.to_html(include_plotlyjs="cdn", full_html=True), encoding="utf-8")

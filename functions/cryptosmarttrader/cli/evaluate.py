"""`cst evaluate`: honest walk-forward evaluation on the recorded real data (typer sub-app)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cryptosmarttrader.cli._common import err_console, fail, parse_day
from cryptosmarttrader.cli._progress import progress_bars, show_progress
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cryptosmarttrader.services.skill_evaluation import SkillResult

# polars, plotly, xgboost and the services are imported inside the command: `cst --help` and the
# other commands never pay for them (bench/bench_cli_startup.py).

# Mounted by the root app as ``app.add_typer(evaluate.app, name="evaluate")`` → `cst evaluate ...`
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def evaluate_cmd(
    train_end: Annotated[
        str, typer.Option("--train-end", help="Choices are fixed on data before this day.")
    ],
    start: Annotated[str, typer.Option("--start", help="First reported decision day.")],
    end: Annotated[str, typer.Option("--end", help="Last reported decision day.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000)] = 20,
    top_n: Annotated[
        int, typer.Option("--top-n", min=10, max=200, help="Point-in-time universe size.")
    ] = 200,
    step_days: Annotated[
        int, typer.Option("--step-days", min=1, help="Days between decision days.")
    ] = 7,
    first_decision: Annotated[
        str, typer.Option("--first-decision", help="First decision day of the history replay.")
    ] = "2016-01-01",
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report (plotly) here.")
    ] = None,
    save_model: Annotated[
        Path | None,
        typer.Option(
            "--save-model",
            help="Write the last refitted ranking model and its "
            "evaluation here (cst model register / cst scan --model).",
        ),
    ] = None,
) -> None:
    """Walk-forward evaluation on the point-in-time universe: per-date precision@k, AUC and rank
    IC with block-bootstrap 95 % intervals beside trivial rankers, the exit rule's portfolio
    after volume-scaled costs, calibration of the gate's probability, and whether to trade."""
    from pydantic import ValidationError

    from cryptosmarttrader.adapters.pit_membership import PitMembershipError, load_pit_membership
    from cryptosmarttrader.adapters.ranking_bundle import save_ranking_bundle
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.adapters.xgb_predictor import XgbRankTrainer
    from cryptosmarttrader.services.skill_evaluation import SkillConfig, SkillError, evaluate_skill
    from cryptosmarttrader.wiring import excluded_coins, resolve_data_dir

    try:
        cfg = SkillConfig(
            train_end=_date(train_end, "--train-end"),
            start=_date(start, "--start"),
            end=_date(end, "--end"),
            top_k=top_k,
            top_n=top_n,
            step_days=step_days,
            first_decision=_date(first_decision, "--first-decision"),
        )
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"])
    try:
        data_dir = resolve_data_dir(data)
        market = RecordedMarketData(data_dir)
        with progress_bars(show_progress(as_json)) as progress:
            result = evaluate_skill(
                market,
                XgbRankTrainer(),
                cfg,
                excluded_symbols=excluded_coins(market),
                membership=load_pit_membership(data_dir),
                progress=progress,
            )
    except (SkillError, PitMembershipError, ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if report is not None:
        write_report(result, report)
    if save_model is not None:
        if result.ranker is None:
            err_console.print("no model saved: no walk-forward refit had enough matured rows")
        else:
            save_ranking_bundle(save_model, result)
            err_console.print(
                f"model and its evaluation saved to {save_model} "
                f"({'trades' if result.summary['decision']['trade'] else 'does not trade'})"
            )
    if as_json:
        typer.echo(jsonout.dumps(result.summary, indent=2))
    else:
        _print_summary(result.summary)


def _date(value: str, option: str) -> date:
    return parse_day(value, option).date()


def _fmt(iv: dict[str, Any]) -> str:
    if iv.get("value") is None:
        return "n/a"
    lo, hi = iv.get("ci_low"), iv.get("ci_high")
    band = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{iv['value']:.3f}{band}"


def _print_summary(s: dict[str, Any]) -> None:
    u = s["universe"]
    typer.echo(
        f"universe: {u['source']} top {u['top_n']}, {u['decision_days']} decision days, "
        f"{u['ranked_rows_with_outcome']} ranked rows; {u['members_without_prices']} member-days "
        f"without prices; {u['non_overlapping_horizons']:.1f} non-overlapping horizons"
    )
    typer.echo(f"exit rule: {s['exit_rule']}")
    for target, t in s["targets"].items():
        typer.echo(
            f"{target}: precision@{s['config']['top_k']} {_fmt(t['precision_at_k'])}  "
            f"AUC/date {_fmt(t['auc_per_date'])}  rank IC {_fmt(t['rank_ic'])}  "
            f"base rate {t['base_rate']}"
        )
        for name, r in t["trivial_rankers"].items():
            typer.echo(
                f"  {name:>24}: p@k {_fmt(r['precision_at_k'])}  AUC {_fmt(r['auc_per_date'])}  "
                f"IC {_fmt(r['rank_ic'])}"
            )
        typer.echo(f"  {t['verdict']}")
    for name, p in s["portfolio"].items():
        ret = p.get("total_return")
        dd = p.get("max_drawdown")
        typer.echo(
            f"{name:>28}: return {ret if ret is None else f'{ret:+.1%}'}  "
            f"max DD {dd if dd is None else f'{dd:.1%}'}"
        )
    regime = s.get("regime") or {}
    if regime.get("applied"):
        typer.echo(
            f"regime sizing: mean exposure {regime['mean_exposure']} over rebalance days "
            f"{regime['rebalance_days_by_regime']}"
        )
    c = s["calibration"]
    typer.echo(
        f"calibration of P({c['event']}): ECE {c['ece']}  gate {c['gate']} open on "
        f"{c['gate_open_rows']} rows, precision when open {c['precision_when_open']}"
    )
    typer.echo(f"decision: {s['decision']['reason']}")


def write_report(result: SkillResult, path: Path) -> None:
    """Equity curves of the books and the per-date precision of the model and the rankers."""
    import plotly.graph_objects as go
    import polars as pl

    from cryptosmarttrader.domain.market import DAY_MS

    s = result.summary
    fig = go.Figure()
    eq = result.equity.with_columns(
        date=pl.from_epoch(pl.col("day") * DAY_MS, time_unit="ms").dt.date()
    )
    for name in eq["strategy"].unique(maintain_order=True).to_list():
        part = eq.filter(pl.col("strategy") == name)
        fig.add_trace(go.Scatter(x=part["date"].to_list(), y=part["equity"].to_list(), name=name))
    fig.update_yaxes(type="log")
    trade = s["targets"]["trade"]
    fig.update_layout(
        height=700,
        title={
            "text": (
                f"CryptoSmartTrader walk-forward, {s['config']['start']}..{s['config']['end']}"
                f" ({s['exit_rule']})<br><sup>{trade['verdict']}</sup><br>"
                f"<sup>{s['decision']['reason']}</sup>"
            )
        },
        margin={"t": 160},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fig.to_html(include_plotlyjs="cdn", full_html=True), encoding="utf-8")

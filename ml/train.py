"""SageMaker script-mode training entry point; runs locally with the same arguments.

SageMaker passes hyperparameters as ``--name value`` arguments and the locations as environment
variables; locally set the same variables or pass the ``--train/--model-dir/--output-data-dir``
options (what ``cst model train`` does)::

    SM_CHANNEL_TRAIN=data/ SM_MODEL_DIR=out/model SM_OUTPUT_DATA_DIR=out/data \\
        uv run python ml/train.py --train-end 2019-06-30 --horizon-days 30 --threshold 0.5

Input (channel ``train``): Parquet files of daily bars in ``DAILY_SCHEMA`` (symbol, ts, close,
volume, market_cap), stablecoins and wrapped tokens already removed. Features come from
``cryptosmarttrader.domain.features`` — the module the Lambdas serve with — and the walk-forward
with purge and embargo from ``services.model_lifecycle.train_walk_forward``.

Output: ``SM_MODEL_DIR/{model.json, card.json, reference.json}`` (xgboost JSON model, model card
with every fold's metrics, drift reference) and ``SM_OUTPUT_DATA_DIR/metrics.json``; the pooled
out-of-sample metrics are also printed as ``oos_<name>=<value>;`` for SageMaker metric
definitions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer
from cryptosmarttrader.domain.features import FEATURE_COLUMNS
from cryptosmarttrader.domain.market import DAILY_SCHEMA
from cryptosmarttrader.services.model_lifecycle import TrainConfig, TrainedModel, train_walk_forward
from cryptosmarttrader.services.model_registry import feature_set_hash

MODEL_FILE = "model.json"
CARD_FILE = "card.json"
REFERENCE_FILE = "reference.json"
METRICS_FILE = "metrics.json"


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--train", type=Path, default=env.get("SM_CHANNEL_TRAIN"))
    p.add_argument("--model-dir", type=Path, default=env.get("SM_MODEL_DIR"))
    p.add_argument("--output-data-dir", type=Path, default=env.get("SM_OUTPUT_DATA_DIR"))
    p.add_argument("--group", default="cst-daily-ml")
    p.add_argument("--train-end", type=date.fromisoformat, required=True)
    p.add_argument("--first-day", type=date.fromisoformat, default=None)
    p.add_argument("--horizon-days", type=int, default=30)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--step-days", type=int, default=7)
    p.add_argument("--fold-days", type=int, default=91)
    p.add_argument("--min-train-days", type=int, default=365)
    p.add_argument("--embargo-days", type=int, default=7)
    p.add_argument("--reference-days", type=int, default=182)
    p.add_argument("--features", default=",".join(FEATURE_COLUMNS))
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--max-depth", type=int, default=4)
    p.add_argument("--eta", type=float, default=0.05)
    p.add_argument("--nthread", type=int, default=1)
    p.add_argument("--git-commit", default=env.get("CST_GIT_COMMIT"))
    args = p.parse_args(list(argv))
    for name in ("train", "model_dir", "output_data_dir"):
        if getattr(args, name) is None:
            env_name = {"train": "SM_CHANNEL_TRAIN", "model_dir": "SM_MODEL_DIR"}.get(
                name, "SM_OUTPUT_DATA_DIR"
            )
            p.error(f"--{name.replace('_', '-')} or {env_name} is required")
    return args


def git_commit(explicit: str | None) -> str:
    """The commit to record: explicit (SageMaker has no checkout), else this checkout's HEAD,
    marked ``-dirty`` when the tree has uncommitted changes."""
    if explicit:
        return explicit
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def read_channel(folder: Path) -> pl.DataFrame:
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no *.parquet files in the train channel {folder}")
    frame = pl.concat([pl.read_parquet(f) for f in files])
    missing = [c for c in DAILY_SCHEMA if c not in frame.columns]
    if missing:
        raise SystemExit(f"train channel lacks columns {missing} (expects {list(DAILY_SCHEMA)})")
    return frame.select(list(DAILY_SCHEMA)).cast(pl.Schema(DAILY_SCHEMA))


def train(args: argparse.Namespace, now: datetime) -> TrainedModel:
    hyper: dict[str, Any] = {"max_depth": args.max_depth, "eta": args.eta}
    cfg = TrainConfig(
        group=args.group,
        train_end=args.train_end,
        first_day=args.first_day,
        horizon_days=args.horizon_days,
        threshold=args.threshold,
        step_days=args.step_days,
        fold_days=args.fold_days,
        min_train_days=args.min_train_days,
        embargo_days=args.embargo_days,
        reference_days=args.reference_days,
        features=tuple(f for f in args.features.split(",") if f),
        params={"rounds": args.rounds, "nthread": args.nthread, **hyper},
    )
    trainer = XgbTrainer(rounds=args.rounds, nthread=args.nthread, params=hyper)
    return train_walk_forward(
        read_channel(args.train),
        cfg,
        trainer,
        feature_hash=feature_set_hash(cfg.features),
        git_commit=git_commit(args.git_commit),
        created_at=now,
    )


def write_outputs(result: TrainedModel, model_dir: Path, output_dir: Path) -> None:
    if not isinstance(result.predictor, XgbPredictor):
        raise TypeError(f"expected an XgbPredictor, got {type(result.predictor).__name__}")
    model_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILE).write_bytes(result.predictor.to_bytes())
    (model_dir / CARD_FILE).write_text(result.card.model_dump_json(indent=1))
    (model_dir / REFERENCE_FILE).write_text(result.reference.model_dump_json())
    metrics = {
        "oos": result.card.oos.model_dump(mode="json"),
        "folds": [f.model_dump(mode="json") for f in result.card.folds],
    }
    (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, os.environ if env is None else env)
    result = train(args, datetime.now(tz=UTC))
    write_outputs(result, args.model_dir, args.output_data_dir)
    oos = result.card.oos
    for fold in result.card.folds:
        print(f"fold {fold.test_start}..{fold.test_end} n_test={fold.n_test} auc={fold.auc};")
    print(
        f"oos_auc={oos.auc}; oos_brier={oos.brier}; oos_ece={oos.ece}; "
        f"oos_precision_at_k={oos.precision_at_k}; oos_lift={oos.lift};"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

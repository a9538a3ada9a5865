"""What a plain `uv sync --frozen` (no extras) installs is enough for every `cst` command, and the
Lambda bundles ship only what their functions import."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "infra" / "lambda_requirements"


def _locked_project() -> dict[str, object]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text(encoding="utf-8"))
    (project,) = [p for p in lock["package"] if p["name"] == "cryptosmarttrader"]
    return project


def test_a_plain_frozen_sync_installs_xgboost_for_cst_evaluate() -> None:
    # Given the lock a `uv sync --frozen` installs from (no extras, no groups)
    project = _locked_project()
    default = {d["name"] for d in project["dependencies"]}  # type: ignore[index, union-attr]
    # Then the ML agent's trainer (`cst evaluate`, `cst model train`) is part of it
    assert "xgboost-cpu" in default
    # and the CUDA build (hundreds of MB of GPU libraries) is not
    assert "xgboost" not in default


def test_lambda_bundles_never_ship_xgboost() -> None:
    for pins in REQUIREMENTS.glob("*.txt"):
        names = {
            line.split("==")[0].strip().lower()
            for line in pins.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith(("#", " "))
        }
        assert not {"xgboost", "xgboost-cpu"} & names, pins.name

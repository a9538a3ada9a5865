"""`cst` starts fast: the heavy libraries are imported by the commands that use them, not by the CLI.

Checked structurally (which modules a fresh interpreter has loaded), never by timing: the
start-up time itself is measured by ``bench/bench_cli_startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "numpy",
    "polars",
    "pyarrow",
    "pandas",
    "moto",
    "boto3",
    "botocore",
    "ccxt",
    "plotly",
    "xgboost",
    "sklearn",
    "scipy",
    "aws_cdk",
    "aws_lambda_powertools",
)


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"import sys, json\n{code}\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import cryptosmarttrader.cli") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["killswitch", "--help"],
        ["evaluate", "--help"],
        ["backtest", "--help"],
        ["model", "train", "--help"],
        ["chaos", "run", "--help"],
        ["api", "serve", "--help"],
    ],
)
def test_help_of_a_command_loads_no_heavy_library(argv: list[str]) -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from cryptosmarttrader.cli import app\n"
        f"result = CliRunner().invoke(app, {argv!r})\n"
        "assert result.exit_code == 0, result.output\n"
    )
    assert _loaded_after(code) == []


def test_the_cli_lists_the_chaos_scenarios_of_the_service() -> None:
    from cryptosmarttrader.cli import chaos as cli_chaos
    from cryptosmarttrader.services import chaos as service_chaos

    assert cli_chaos.SCENARIOS == service_chaos.SCENARIOS

"""`cst model` commands on bad input: one clear line and an exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app


def test_canary_of_an_unknown_version_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    result = CliRunner().invoke(
        app,
        ["model", "canary", "7", "--asof", "2020-06-01", "--state-dir", str(tmp_path)],
    )
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert "has no version 7" in result.output
    assert "Traceback" not in result.output

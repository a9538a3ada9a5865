"""Strict JSON output: a non-finite number is written as null, never as NaN / Infinity."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.jsonout import dumps, finite


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("Infinity"), Decimal("-inf")]
)
def test_non_finite_numbers_become_null_at_any_depth(bad: object) -> None:
    doc = {"a": bad, "b": [1.5, bad, {"c": (bad, 2)}], "d": "NaN is a word here"}
    text = dumps(doc, default=str)
    assert _strict(text) == {
        "a": None,
        "b": [1.5, None, {"c": [None, 2]}],
        "d": "NaN is a word here",
    }


def test_finite_values_are_unchanged() -> None:
    doc = {"x": 0.1, "y": -3, "z": Decimal("1.25"), "ok": True, "none": None}
    assert finite(doc) == doc
    assert _strict(dumps(doc, default=str)) == {
        "x": 0.1,
        "y": -3,
        "z": "1.25",
        "ok": True,
        "none": None,
    }


def test_every_json_document_the_cli_prints_goes_through_the_strict_writer() -> None:
    # Given the source of every `cst` command
    import ast
    from pathlib import Path

    import cryptosmarttrader.cli as cli

    offenders = []
    for path in sorted(Path(cli.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            # When a printed value is built by json.dumps (NaN / Infinity allowed by default)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"echo", "print", "write"}
                and any(
                    isinstance(arg, ast.Call)
                    and isinstance(arg.func, ast.Attribute)
                    and arg.func.attr == "dumps"
                    and isinstance(arg.func.value, ast.Name)
                    and arg.func.value.id == "json"
                    for arg in node.args
                )
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    # Then there is none: every printed document is written by jsonout.dumps
    assert offenders == []

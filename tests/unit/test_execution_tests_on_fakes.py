"""The execution modules start AWS (moto, the embedded local AWS, a ``cst`` command on it) only
in the tests docs/testing.md names as on moto, with the reason; every other test of theirs runs
on the in-memory fakes. Read from the sources, so nothing here starts moto."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "tests" / "integration"
MODULES = (
    "test_execution",
    "test_execution_calls",
    "test_execution_faults",
    "test_execution_handler",
    "test_execution_logic",
    "test_execution_risk_state",
    "test_input_faults_execution",
)
# what starts AWS: moto, the tests' moto stack, the embedded local AWS, a `cst` command (the CLI
# builds its stores on the embedded local AWS)
AWS_NAMES = {"mock_aws", "moto_stack", "embedded_aws", "CliRunner"}


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _params(fn: ast.FunctionDef) -> set[str]:
    return {a.arg for a in fn.args.args}


def _is_fixture(fn: ast.FunctionDef) -> bool:
    return any("fixture" in _names(d) for d in fn.decorator_list)


def aws_starting_tests(source: str) -> set[str]:
    """The module's tests that start AWS: directly, through a helper of the module that does, or
    through a fixture of the module that does (transitively)."""
    functions = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    on_aws: set[str] = set()
    changed = True
    while changed:  # helpers and fixtures that start AWS, through each other
        changed = False
        for fn in functions:
            if fn.name.startswith("test_") or fn.name in on_aws:
                continue
            used = _names(fn) | (_params(fn) if _is_fixture(fn) else set())
            if used & (AWS_NAMES | on_aws):
                on_aws.add(fn.name)
                changed = True
    return {
        fn.name
        for fn in functions
        if fn.name.startswith("test_") and (_names(fn) | _params(fn)) & (AWS_NAMES | on_aws)
    }


def _all_tests(source: str) -> set[str]:
    return {
        n.name
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    }


def documented_on_moto(module: str) -> set[str] | None:
    """The "on moto" cell of ``module``'s row in docs/testing.md: the tests it names, every test
    when it says "all" / "both", none for "—"; ``None`` without a row."""
    text = (ROOT / "docs" / "testing.md").read_text()
    row = re.search(rf"^\| `{module}` \| (?P<moto>[^|]*) \|", text, re.MULTILINE)
    if row is None:
        return None
    cell = row["moto"].strip()
    if cell.startswith(("all", "both")):
        return _all_tests((INTEGRATION / f"{module}.py").read_text())
    return set(re.findall(r"`(test_[a-z0-9_]+)`", cell))


@pytest.mark.parametrize("module", MODULES)
def test_only_the_tests_docs_name_as_on_moto_start_aws(module: str) -> None:
    source = (INTEGRATION / f"{module}.py").read_text()
    documented = documented_on_moto(module)
    assert documented is not None, f"docs/testing.md has no row for {module}"
    assert documented <= _all_tests(source), documented - _all_tests(source)
    assert aws_starting_tests(source) == documented


def test_the_check_sees_aws_through_fixtures_and_helpers() -> None:
    source = """
import pytest
@pytest.fixture
def clients(monkeypatch):
    with moto_stack(monkeypatch) as aws:
        yield aws
@pytest.fixture
def rig(clients):
    return clients
def _on_disk(path):
    with embedded_aws(path) as aws:
        return aws
def test_fixture(rig): ...
def test_helper(tmp_path):
    _on_disk(tmp_path)
def test_cli():
    CliRunner().invoke(app, [])
def test_fakes(stores): ...
"""
    assert aws_starting_tests(source) == {"test_fixture", "test_helper", "test_cli"}

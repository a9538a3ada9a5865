"""mypy checks every aws-cdk-lib module the type-checked code imports.

`pyproject.toml` skips aws-cdk-lib's modules for mypy (`follow_imports = "skip"`: most of a cold
run's time went to modules the stack never uses) and follows back only those it names. A module
imported by the checked code but missing from that list would read as `Any`, and a wrong
argument to one of its constructs would pass unseen: this test fails first.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _overrides() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    overrides: list[dict[str, object]] = config["tool"]["mypy"]["overrides"]
    return overrides


def _followed_cdk_modules() -> set[str]:
    followed: set[str] = set()
    for override in _overrides():
        if override.get("follow_imports") != "normal":
            continue
        modules = override["module"]
        names = [modules] if isinstance(modules, str) else list(modules)
        followed |= {name for name in names if name.split(".")[0] == "aws_cdk"}
    return followed


def _checked_files() -> list[Path]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    files: list[Path] = []
    for entry in config["tool"]["mypy"]["files"]:
        files += sorted((REPO / entry).rglob("*.py"))
    return files


def _cdk_modules_imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "aws_cdk"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "aws_cdk":
                continue
            found.add(node.module)
            if node.module == "aws_cdk":  # from aws_cdk import aws_lambda as lambda_
                found |= {f"aws_cdk.{a.name}" for a in node.names if a.name.startswith("aws_")}
    return found


def test_the_skip_covers_aws_cdk_and_follows_the_package_itself() -> None:
    skipped = [o for o in _overrides() if o.get("follow_imports") == "skip"]
    assert any(o["module"] == "aws_cdk.*" for o in skipped)
    assert "aws_cdk" in _followed_cdk_modules()


def test_every_aws_cdk_module_the_checked_code_imports_is_followed() -> None:
    # Given every aws-cdk-lib module imported by a file mypy checks
    imported: dict[str, str] = {}
    for path in _checked_files():
        for module in _cdk_modules_imported(path):
            imported.setdefault(module, str(path.relative_to(REPO)))
    assert "aws_cdk.aws_lambda" in imported  # the scan found the stack's imports
    # Then each is followed, so its constructs are type-checked rather than `Any`
    missing = {m: where for m, where in imported.items() if m not in _followed_cdk_modules()}
    assert not missing, (
        f'add these to the aws_cdk `follow_imports = "normal"` list in pyproject.toml: {missing}'
    )


def test_the_scan_reads_each_import_form(tmp_path: Path) -> None:
    source = (
        "import aws_cdk.aws_sqs\n"
        "from aws_cdk import Duration, aws_iam as iam\n"
        "from aws_cdk.aws_events import Rule\n"
        "from . import sibling\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    assert _cdk_modules_imported(probe) == {
        "aws_cdk.aws_sqs",
        "aws_cdk",
        "aws_cdk.aws_iam",
        "aws_cdk.aws_events",
    }

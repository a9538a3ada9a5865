"""mypy checks every aws-cdk-lib module the type-checked code imports.

`pyproject.toml` skips aws-cdk-lib's modules for mypy (`follow_imports = "skip"`: most of a cold
run's time went to modules the stack never uses) and follows back only those it names. A module
imported by the checked code but missing from that list would read as `Any`, and a wrong
argument to one of its constructs would pass unseen: this test fails first.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import tomllib
from pathlib import Path

import pytest

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


@functools.cache
def _is_cdk_module(name: str) -> bool:
    """Whether ``name`` is a module of the installed aws-cdk-lib (found without importing it)."""
    spec = importlib.util.find_spec("aws_cdk")
    assert spec is not None and spec.origin is not None
    parts = name.split(".")
    if parts[0] != "aws_cdk":
        return False
    path = Path(spec.origin).parent.joinpath(*parts[1:])
    return (path / "__init__.py").is_file() or path.with_suffix(".py").is_file()


def _attribute_path(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """``a.b.c`` as ("a", ["b", "c"]); None when it does not start at a plain name."""
    attrs: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        attrs.insert(0, current.attr)
        current = current.value
    return (current.id, attrs) if isinstance(current, ast.Name) else None


def _cdk_modules_imported(path: Path) -> set[str]:
    """The aws-cdk-lib modules a file reaches: imported by name (``import aws_cdk.aws_sqs``,
    ``from aws_cdk import aws_iam, custom_resources``, ``from aws_cdk.aws_events import Rule``)
    or through an attribute of an imported module (``aws_cdk.aws_ec2.Vpc`` after
    ``import aws_cdk``)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    bound: dict[str, str] = {}  # a name the file binds -> the aws-cdk-lib module it is
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "aws_cdk":
                    continue
                found.add(alias.name)
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:  # import aws_cdk.aws_sqs binds aws_cdk
                    bound["aws_cdk"] = "aws_cdk"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "aws_cdk":
                continue
            found.add(node.module)
            for alias in node.names:  # from aws_cdk import aws_lambda as lambda_
                module = f"{node.module}.{alias.name}"
                if _is_cdk_module(module):
                    found.add(module)
                    bound[alias.asname or alias.name] = module
    for node in ast.walk(tree):
        attribute = _attribute_path(node) if isinstance(node, ast.Attribute) else None
        if attribute is None or attribute[0] not in bound:
            continue
        module = bound[attribute[0]]
        for attr in attribute[1]:
            if not _is_cdk_module(f"{module}.{attr}"):
                break
            module = f"{module}.{attr}"
            found.add(module)
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


# Each form that reaches an aws-cdk-lib module: an import of its own, and the forms that reach
# one without naming it in an import (a submodule not called aws_*, attribute access through the
# package; mypy reads a skipped module as Any in each, so a wrong argument to its constructs
# would pass). Names that are not modules (Stack, Duration) are not counted.
IMPORT_FORMS = {
    "imports": (
        "import aws_cdk.aws_sqs\n"
        "from aws_cdk import Duration, aws_iam as iam\n"
        "from aws_cdk.aws_events import Rule\n"
        "from . import sibling\n",
        {"aws_cdk.aws_sqs", "aws_cdk", "aws_cdk.aws_iam", "aws_cdk.aws_events"},
    ),
    "names and attributes": (
        "import aws_cdk\n"
        "import aws_cdk as cdk\n"
        "import aws_cdk.aws_lambda as lambda_\n"
        "from aws_cdk import Stack, custom_resources as cr\n"
        "from aws_cdk import pipelines\n"
        "aws_cdk.aws_ec2.Vpc(None, 'v')\n"
        "cdk.aws_route53.HostedZone\n"
        "lambda_.Function\n"
        "aws_cdk.Duration.seconds(1)\n",
        {
            "aws_cdk",
            "aws_cdk.aws_lambda",
            "aws_cdk.custom_resources",
            "aws_cdk.pipelines",
            "aws_cdk.aws_ec2",
            "aws_cdk.aws_route53",
        },
    ),
}


@pytest.mark.parametrize("form", sorted(IMPORT_FORMS))
def test_the_scan_finds_the_modules_each_form_reaches(tmp_path: Path, form: str) -> None:
    source, modules = IMPORT_FORMS[form]
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    assert _cdk_modules_imported(probe) == modules

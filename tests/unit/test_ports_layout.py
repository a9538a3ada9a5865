"""Every Protocol of the runtime package is a port declared in ``ports.py`` (the domain's
``Clock`` excepted: pure code takes a clock, and ``ports`` re-exports it)."""

from __future__ import annotations

import ast
from pathlib import Path

import cryptosmarttrader
import tests.fakes
from cryptosmarttrader import ports

PACKAGE = Path(cryptosmarttrader.__file__).parent
ALLOWED_OUTSIDE = {("domain/clock.py", "Clock")}


def _protocols(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(
            (isinstance(b, ast.Name) and b.id == "Protocol")
            or (isinstance(b, ast.Attribute) and b.attr == "Protocol")
            for b in node.bases
        )
    ]


def test_protocols_are_declared_in_ports_only() -> None:
    outside = [
        (path.relative_to(PACKAGE).as_posix(), name)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "ports.py" or path.parent != PACKAGE
        for name in _protocols(path)
    ]
    assert [entry for entry in outside if entry not in ALLOWED_OUTSIDE] == []


def test_every_port_is_exported() -> None:
    declared = set(_protocols(PACKAGE / "ports.py"))
    assert declared - set(ports.__all__) == set()
    assert {"Clock"} <= set(ports.__all__)


def test_every_port_has_a_fake_or_a_stated_stand_in() -> None:
    # tests/fakes.py names each port: in the docstring of the fake that implements it, or in
    # the module's docstring with what stands in for it
    documented = Path(tests.fakes.__file__).read_text(encoding="utf-8")
    missing = [
        name
        for name in sorted(_protocols(PACKAGE / "ports.py"))
        if f"``{name}``" not in documented and f"`{name}`" not in documented
    ]
    assert missing == []

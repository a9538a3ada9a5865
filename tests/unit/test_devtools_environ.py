"""The dev tooling's environment patch: set, unset, and restore even when the block raises."""

from __future__ import annotations

import os

import pytest

from cst_devtools.environ import patched_environ


def test_values_are_set_and_unset_for_the_block_and_restored_after_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given one variable set, one to override and one absent
    monkeypatch.setenv("CST_T_KEEP", "before")
    monkeypatch.setenv("CST_T_DROP", "endpoint")
    monkeypatch.delenv("CST_T_NEW", raising=False)

    # When a block runs with a value set and one unset, and raises
    inside: dict[str, str | None] = {}

    def block() -> None:
        with patched_environ({"CST_T_KEEP": "x", "CST_T_NEW": "y"}, unset=["CST_T_DROP"]):
            inside.update({k: os.environ.get(k) for k in ("CST_T_KEEP", "CST_T_NEW", "CST_T_DROP")})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        block()
    assert inside == {"CST_T_KEEP": "x", "CST_T_NEW": "y", "CST_T_DROP": None}

    # Then the environment is what it was: values back, the new one gone
    assert os.environ["CST_T_KEEP"] == "before"
    assert os.environ["CST_T_DROP"] == "endpoint"
    assert "CST_T_NEW" not in os.environ

"""Progress of long-running use cases, reported through a callback.

A service calls ``progress(step, done, total)`` as it works: ``step`` names what it is doing
("replay decision days"), ``done`` counts finished units of that step and ``total`` is how many
there are (None when unknown). The CLI turns the calls into progress bars on a terminal; the
Lambdas and tests pass nothing (:func:`no_progress`). Services never import a UI library; the callback's type is the
``Progress`` port (:mod:`cryptosmarttrader.ports`).
"""

from __future__ import annotations

__all__ = ["no_progress"]


def no_progress(step: str, done: int, total: int | None) -> None:
    """The default: report nowhere."""

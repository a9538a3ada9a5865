"""`cst`: the command-line front of CryptoSmartTrader (typer + rich).

The sub-command groups (``cst golive ...``, ``cst model ...``) are listed here by name, module
and help, and each group's module is imported when the group is first asked for: ``cst golive
status`` imports the go-live commands only, not the API server's or the book's. What each group
is, once imported, is exactly what ``app.add_typer(module.app, name=..., help=...)`` makes of
it; ``cst --help`` asks for them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import typer
from typer.core import TyperGroup

from cryptosmarttrader.cli import cost as _cost
from cryptosmarttrader.cli import demo as _demo
from cryptosmarttrader.cli import execute as _execute
from cryptosmarttrader.cli import scan as _scan

if TYPE_CHECKING:
    from typer._click import Command, Context  # the click typer builds its commands with


@dataclass(frozen=True)
class Group:
    """A sub-command group: ``cst <name> ...`` is the typer app ``app`` of the module of the
    same name under ``cryptosmarttrader.cli``."""

    name: str
    help: str

    @property
    def module(self) -> str:
        """The group's module under ``cryptosmarttrader.cli``: its name."""
        return self.name


# in the order `cst --help` lists them, after the commands demo, scan, execute and cost
GROUPS: Final = (
    Group("ingest", "Load recorded candles into the local S3 lake."),
    Group("data", "Inspect the recorded data: quality findings per source."),
    Group("killswitch", "Show or set the kill-switch and risk level."),
    Group("evaluate", "Walk-forward evaluation of the ensemble."),
    Group("backtest", "Replay the scan over past dates."),
    Group("golive", "Go-live: staging, SLO gates, canary, rollback."),
    Group("tracking", "Paper vs backtest fill tracking error (bps)."),
    Group("chaos", "Chaos suite: real faults on local infra, recovery."),
    Group("local", "Deploy the stacks to a local AWS (moto/LocalStack)."),
    Group("api", "HTTP API: local server over the embedded AWS, OpenAPI."),
    Group("model", "ML lifecycle: train, registry, drift, canary."),
    Group("book", "The stored book: orders and positions the cycle cannot read."),
    Group("web", "Publish the built web dashboard to the deployed stack."),
)

_APP_OPTIONS: Final[dict[str, Any]] = {"pretty_exceptions_enable": False, "add_completion": False}


def group_app(group: Group) -> typer.Typer:
    """The typer app of ``group`` (imports its module)."""
    module = importlib.import_module(f"cryptosmarttrader.cli.{group.module}")
    sub: typer.Typer = module.app
    return sub


def build_group(group: Group) -> Command:
    """The command ``app.add_typer(<the group's app>, name=..., help=...)`` makes of ``group``
    under a parent with this app's options."""
    holder = typer.Typer(**_APP_OPTIONS)
    holder.add_typer(group_app(group), name=group.name, help=group.help)
    return typer.main.get_group(holder).commands[group.name]


class _Commands(MutableMapping[str, "Command"]):
    """The top-level commands, in order: the ones built with the app, then the groups of
    :data:`GROUPS`, each built on first access. Naming them builds none."""

    def __init__(self, built: MutableMapping[str, Command]) -> None:
        self._built = dict(built)
        self._lazy = {g.name: g for g in GROUPS if g.name not in self._built}
        self._order = [*self._built, *self._lazy]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built and name in self._lazy:
            self._built[name] = build_group(self._lazy[name])
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self:
            self._order.append(name)
        self._lazy.pop(name, None)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._order.remove(name)
        self._lazy.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._built or name in self._lazy

    def get(self, name: str, default: Any = None) -> Any:
        """The command ``name`` (built now if it is a group not built yet), or ``default`` when
        there is none. An error raised while a group is built (its module's import) comes out
        as it is: the mapping's own ``get`` would take a ``KeyError`` for a missing command."""
        if name not in self:
            return default
        return self[name]


class LazyGroupsTyperGroup(TyperGroup):
    """typer's group whose sub-command groups are built (their modules imported) when asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names only: building each is for who asks for it


app = typer.Typer(
    name="cst",
    help="CryptoSmartTrader: real-data crypto scanning, risk-guarded paper/live trading on AWS.",
    no_args_is_help=True,
    cls=LazyGroupsTyperGroup,
    **_APP_OPTIONS,
)
app.command("demo")(_demo.demo)
app.command("scan")(_scan.scan)
app.command("execute")(_execute.execute)
app.command("cost")(_cost.cost)


def main() -> None:  # pragma: no cover - console entry point
    app()

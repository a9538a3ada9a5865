"""How many coins each agent voted on in one decision, and why it abstained on the others.

The scan reports, for each of the nine agents (the six of the registry, the market regime, the
ML predictor and the ensemble that stacks them), its ``votes``, its ``abstentions`` and the
abstention reasons with their counts. Two agents are not per-coin voters and are counted as
follows:

* ``liquidity`` is a gate: every row of it is an abstention by design. A coin it judged (passed
  or vetoed) counts as one of its decisions (``votes``), its vetoes are counted apart
  (``vetoes``), and a coin it could not judge would be an abstention.
* ``regime`` reads the whole market once: when a regime is known it applies to every coin the
  scan scored (``votes`` = coins); otherwise every coin abstains with the regime's reason.

An agent that did not run (no fitted model for ``ml`` and ``ensemble``, an unhealthy source)
abstains on every coin with the stated reason: a missing agent is never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from cryptosmarttrader.domain.agents import (
    arbitrage,
    early_mover,
    funding,
    liquidity,
    sentiment,
    technical,
)
from cryptosmarttrader.domain.agents.regime import RegimeReading

__all__ = ["AGENT_NAMES", "MAX_REASONS", "REGIME_AGENT", "AgentTally", "tally_agents"]

REGIME_AGENT: Final = "regime"
ML_AGENT: Final = "ml"
ENSEMBLE_AGENT: Final = "ensemble"
AGENT_NAMES: Final[tuple[str, ...]] = (
    technical.AGENT,
    early_mover.AGENT,
    funding.AGENT,
    arbitrage.AGENT,
    sentiment.AGENT,
    liquidity.AGENT,
    REGIME_AGENT,
    ML_AGENT,
    ENSEMBLE_AGENT,
)
MAX_REASONS: Final = 10  # the most frequent reasons per agent; the rest are counted together


@dataclass(frozen=True, slots=True)
class AgentTally:
    votes: int
    abstentions: int
    abstention_reasons: Mapping[str, int] = field(default_factory=dict)
    vetoes: int = 0


def _reasons(reasons: pl.Series) -> dict[str, int]:
    """Reason → coins, reasons differing only in their numbers counted together under the
    first of them ("large cap (rank 1 by market cap ≤ 20)…  (and 19 similar)")."""
    if reasons.is_empty():
        return {}
    groups = (
        pl.DataFrame({"reason": reasons.cast(pl.String)})
        .with_columns(pattern=pl.col("reason").str.replace_all(r"\d+(?:\.\d+)?", "#"))
        .group_by("pattern")
        .agg(
            n=pl.len(),
            example=pl.col("reason").min(),
            distinct=pl.col("reason").n_unique(),
        )
        .with_columns(
            key=pl.when(pl.col("distinct") > 1)
            .then(pl.format("{} (and {} similar)", "example", pl.col("distinct") - 1))
            .otherwise(pl.col("example"))
        )
        .sort(["n", "key"], descending=[True, False])
    )
    out = {str(k): int(n) for k, n in groups.head(MAX_REASONS).select("key", "n").iter_rows()}
    rest = groups.slice(MAX_REASONS)
    if rest.height:
        out[f"{rest.height} other reason(s)"] = int(rest["n"].sum())
    return out


def tally_agents(
    votes: pl.DataFrame,
    symbols: Sequence[str],
    regime: RegimeReading | None,
    not_run: Mapping[str, str],
) -> dict[str, AgentTally]:
    """Each agent's tally over ``symbols`` (the coins the scan scored) from ``votes``
    (``VOTE_SCHEMA``, any agents). ``not_run`` gives the reason of each agent that produced no
    rows (e.g. ``{"ml": "no fitted model configured"}``); an agent with no rows and no reason
    abstains with "produced no vote". Agents outside :data:`AGENT_NAMES` found in ``votes``
    are tallied too."""
    n = len(set(symbols))
    mine = votes.filter(pl.col("symbol").is_in(list(symbols)))
    names = list(AGENT_NAMES) + sorted(
        set(mine["agent"].unique().to_list()) - set(AGENT_NAMES) - {"all"}
    )
    out: dict[str, AgentTally] = {}
    for name in names:
        if name == REGIME_AGENT:
            if regime is None:
                why = not_run.get(name, "regime not detected")
                out[name] = AgentTally(0, n, {why: n} if n else {})
            elif regime.regime is None:
                out[name] = AgentTally(0, n, {regime.reason: n} if n else {})
            else:
                out[name] = AgentTally(n, 0)
            continue
        rows = mine.filter(pl.col("agent") == name)
        if rows.is_empty():
            shared = mine.filter(pl.col("agent") == "all")  # one reason for every agent
            why = (
                str(shared["abstain_reason"][0])
                if shared.height
                else not_run.get(name, "produced no vote")
            )
            out[name] = AgentTally(0, n, {why: n} if n else {})
            continue
        reason = pl.col("abstain_reason")
        if name == liquidity.AGENT:
            judged = reason.str.starts_with(liquidity.VETO_PREFIX) | reason.str.starts_with(
                "no directional view"
            )
            decided = rows.filter(judged)
            out[name] = AgentTally(
                votes=decided.height,
                abstentions=rows.height - decided.height,
                abstention_reasons=_reasons(rows.filter(~judged)["abstain_reason"]),
                vetoes=int(decided["abstain_reason"].str.starts_with(liquidity.VETO_PREFIX).sum()),
            )
            continue
        abstained = rows.filter(reason.is_not_null())
        out[name] = AgentTally(
            votes=rows.height - abstained.height,
            abstentions=abstained.height,
            abstention_reasons=_reasons(abstained["abstain_reason"]),
        )
    return out

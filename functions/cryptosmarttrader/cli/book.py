"""`cst book check`: every stored order and position read as the trading cycle reads them, and
the records that cannot be read named (key, coin, why).

The tables are those of the resource contract, on the embedded local AWS (state in
``--state-dir``, CST_STATE_DIR or ``.cst``) or on the endpoint in AWS_ENDPOINT_URL. Each record
is read through the DynamoDB adapter (``all_orders``, ``load_all``): what it cannot read here,
the execution cycle cannot either (its equity is unknown and every entry refused until the
record is repaired, README_OPERATIONS.md "An unreadable book record"). Exit code 1 when one
record cannot be read, 0 when the book reads whole. Nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptosmarttrader.cli._common import state_dir
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.book import OpenOrders, PositionBook
from cryptosmarttrader.domain.killswitch import escape_controls

# boto3 and moto are imported inside the command (fast `cst --help`).

app = typer.Typer(
    name="book",
    help="The stored book (orders, positions): records the trading cycle cannot read.",
    no_args_is_help=True,
    add_completion=False,
)

StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def check_payload(orders: OpenOrders, positions: PositionBook) -> dict[str, object]:
    """What the check reports: how many records of each table were read and every record that
    could not be (its table, key, coin and why; ``*``: its coin cannot be read either)."""
    unreadable = [
        {"table": table, "key": bad.key, "symbol": bad.symbol, "reason": bad.reason}
        for table, read in (("orders", orders), ("positions", positions))
        for bad in read.unreadable
    ]
    return {
        "orders_read": len(orders),
        "positions_read": len(positions),
        "unreadable": unreadable,
    }


@app.command("check")
def check(state: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Read every order and position; print each record that cannot be read (exit 1 if any)."""
    from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoPositionStore
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    with embedded_aws(state_dir(state), AwsResources(), lake=False) as aws:
        res = aws.resources
        orders = DynamoOrderStore(res.orders_table, aws.dynamodb).all_orders()
        positions = DynamoPositionStore(res.positions_table, aws.dynamodb).load_all()
    payload = check_payload(orders, positions)
    bad = payload["unreadable"]
    assert isinstance(bad, list)
    if as_json:
        typer.echo(jsonout.dumps(payload, indent=1))
    else:
        typer.echo(
            f"read {payload['orders_read']} order(s) and {payload['positions_read']} "
            f"position(s); {len(bad)} record(s) cannot be read"
        )
        for row in bad:
            # stored text, escaped: a damaged value cannot rewrite the terminal
            typer.echo(
                f"{row['table']} {escape_controls(str(row['key']))} "
                f"({escape_controls(str(row['symbol']))}): {escape_controls(str(row['reason']))}"
            )
    if bad:
        raise typer.Exit(1)

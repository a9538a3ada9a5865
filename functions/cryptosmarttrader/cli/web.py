"""`cst web publish`: the built dashboard (``web/dist``) into the deployed stack's site bucket.

Run after ``cdk deploy`` (``make deploy`` runs ``make web``, the deploy and this). The stack's
outputs name the bucket, the distribution and the API URL; see docs/web.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import boto3
import typer
from rich.console import Console

from cryptosmarttrader.adapters.web_publish import (
    INVALIDATED_PATHS,
    PublishError,
    publish,
    site_target,
)
from cryptosmarttrader.cli._common import fail
from cryptosmarttrader.cli.api import DEFAULT_WEB_DIR

STACK_NAME = "CryptoSmartTrader"

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
console = Console(highlight=False)


@app.command("publish")
def publish_command(
    stack_name: Annotated[
        str, typer.Option("--stack-name", help="The deployed stack whose dashboard to fill.")
    ] = STACK_NAME,
    dist: Annotated[
        Path,
        typer.Option("--dist", help="The built dashboard (default: web/dist of this checkout)."),
    ] = DEFAULT_WEB_DIR,
    region: Annotated[
        str | None,
        typer.Option("--region", help="The stack's region (default: your AWS configuration)."),
    ] = None,
) -> None:
    """Upload the built dashboard, write its config.json (the stack's API URL), keep the
    previous build's files, delete older builds and invalidate /, index.html and config.json."""
    session = boto3.session.Session(region_name=region)
    try:
        target = site_target(session.client("cloudformation"), stack_name)
        published = publish(
            dist, target, s3=session.client("s3"), cloudfront=session.client("cloudfront")
        )
    except PublishError as exc:
        fail(str(exc), code=1)
    console.print(
        f"published build {published.build}: {len(published.uploaded)} file(s) to "
        f"s3://{target.bucket} ({len(published.kept)} of the previous build kept, "
        f"{len(published.deleted)} older deleted); CloudFront invalidation "
        f"{published.invalidation_id} of {' '.join(INVALIDATED_PATHS)}"
    )
    console.print(f"dashboard: {target.url}  (API: {target.api_url})")

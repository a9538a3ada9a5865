"""`cst cost` and docs/cost.md read the synthesized stack; the page never drifts from it."""

import json
from pathlib import Path

from typer.testing import CliRunner

from cryptosmarttrader.cli import app
from cryptosmarttrader.services.cost import estimate, render_markdown
from tests.infrastructure.conftest import (
    REPO_ROOT,
    SKIP_BUNDLING,
    Synthesized,
    synthesized_template,
)

DOC = REPO_ROOT / "docs" / "cost.md"


def test_docs_cost_page_is_generated_from_the_synthesized_template(
    synthesized: Synthesized,
) -> None:
    # Given the template the assertion tests check
    template = json.loads(synthesized.template_path.read_text())
    # Then docs/cost.md is exactly what `cst cost --markdown` renders from it
    expected = render_markdown(estimate(template))
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/cost.md is stale: run `uv run cst cost --markdown > docs/cost.md`"
    )


def test_cli_prices_every_scheduled_function_of_the_stack(synthesized: Synthesized) -> None:
    result = CliRunner().invoke(
        app, ["cost", "--template", str(synthesized.template_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    lambdas = {i["item"].split(" ")[0] for i in payload["items"] if i["service"] == "Lambda"}
    assert {"ingest", "scan", "execute", "drift", "health_probe"} <= lambdas
    assert payload["total_usd"] > 0
    # the web dashboard's distribution is priced (nothing while nobody opens it)
    (cdn,) = [i for i in payload["items"] if i["service"] == "CloudFront"]
    assert cdn["item"] == "1 distribution (web dashboard)"
    # the dashboards line is what the template holds: four boards at $3.00
    (boards,) = [i for i in payload["items"] if i["item"] == "dashboards"]
    assert (boards["quantity"], boards["usd"]) == (4, 12.0)


def test_cli_refuses_a_missing_template_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["cost", "--template", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "error: cost:" in result.stderr


def test_dashboards_switch_off_drops_them_and_their_cost(synthesized: Synthesized) -> None:
    # Given the stack synthesized with the dashboards switched off in cst:config
    off = synthesized_template({**SKIP_BUNDLING, "cst:config": {"dashboards": False}})
    # Then no dashboard is created, every alarm still is, and the bill loses the $12
    assert off.resources_of_type("AWS::CloudWatch::Dashboard") == {}
    alarms = synthesized.resources_of_type("AWS::CloudWatch::Alarm")
    assert set(off.resources_of_type("AWS::CloudWatch::Alarm")) == set(alarms)
    items = {i.item: i.usd for i in estimate(json.loads(off.template_path.read_text())).items}
    assert items["dashboards"] == 0.0

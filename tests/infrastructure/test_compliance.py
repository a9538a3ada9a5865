"""cdk-nag (AwsSolutions) and cfn-lint over the synthesized templates."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from aws_cdk import Validations

from infra.constructs.nag import PLUGIN_PREFIX, SKIP_ACKNOWLEDGMENTS_CONTEXT
from tests.infrastructure.conftest import REPO_ROOT, SKIP_BUNDLING, Synthesized, synthesize

Findings = dict[str, set[str]]  # rule id (with finding) → construct paths


def _violations(report_path: Path) -> Findings:
    report = json.loads(report_path.read_text())
    found: Findings = defaultdict(set)
    for plugin in report["pluginReports"]:
        for violation in plugin["violations"]:
            for construct in violation["violatingConstructs"]:
                found[violation["ruleName"]].add(construct["constructPath"])
    return dict(found)


def _acknowledgements(synthesized: Synthesized) -> dict[str, dict[str, str]]:
    """rule id → {construct path → reason}, from the metadata ``acknowledge`` records."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acks: dict[str, dict[str, str]] = defaultdict(dict)
    for construct in synthesized.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule_id, reason in entry.data.items():
                    acks[rule_id.removeprefix(PLUGIN_PREFIX)][construct.node.path] = reason
    return dict(acks)


def test_nag_reports_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    # Given the app synthesized with the AwsSolutions pack (a failure would have raised)
    report = synthesized.outdir / "validation-report.json"

    # When the validation report is read
    # Then it holds no violation at all
    assert report.is_file()
    assert _violations(report) == {}


@pytest.fixture(scope="module")
def unacknowledged(tmp_path_factory: pytest.TempPathFactory) -> Findings:
    """What cdk-nag reports when every acknowledgement is switched off."""
    outdir = tmp_path_factory.mktemp("cdk.out.noack")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize(outdir, {**SKIP_BUNDLING, SKIP_ACKNOWLEDGMENTS_CONTEXT: True})
    return _violations(outdir / "validation-report.json")


def test_every_acknowledgement_matches_a_real_finding(
    synthesized: Synthesized, unacknowledged: Findings
) -> None:
    # Given the findings without acknowledgements, and the acknowledgements made
    acks = _acknowledgements(synthesized)

    # Then cdk-nag really runs (it finds something once acknowledgements are off) ...
    assert unacknowledged
    # ... every finding is acknowledged at or above the construct it is reported on ...
    for rule, paths in unacknowledged.items():
        for path in paths:
            assert any(path.startswith(f"{ack_path}/") for ack_path in acks.get(rule, {})), (
                f"{rule} on {path} is not acknowledged"
            )
    # ... and no acknowledgement is left over for a finding that does not exist
    for rule, ack_paths in acks.items():
        for ack_path in ack_paths:
            assert any(p.startswith(f"{ack_path}/") for p in unacknowledged.get(rule, set())), (
                f"{rule} acknowledged on {ack_path} but cdk-nag reports nothing there"
            )


def test_every_acknowledgement_is_documented_with_its_reason(synthesized: Synthesized) -> None:
    # Given the infrastructure documentation
    doc = " ".join((REPO_ROOT / "docs" / "infrastructure.md").read_text().split())

    # Then each acknowledged rule appears there with its reason
    for rule, reasons in _acknowledgements(synthesized).items():
        assert rule in doc, f"{rule} missing from docs/infrastructure.md"
        for reason in reasons.values():
            assert " ".join(reason.split()) in doc, f"reason for {rule} not documented"


def test_cfn_lint_finds_no_error(synthesized: Synthesized) -> None:
    # Given the synthesized template and the cfn-lint of this environment
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    assert cfn_lint.is_file(), "cfn-lint is a dev dependency: run `uv sync`"

    # When cfn-lint checks it (CDK's W3005 DependsOn warnings are not errors)
    result = subprocess.run(
        [str(cfn_lint), "--non-zero-exit-code", "error", "--", str(synthesized.template_path)],
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it exits 0
    assert result.returncode == 0, result.stdout + result.stderr

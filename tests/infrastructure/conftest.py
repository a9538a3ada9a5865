"""Synthesize the CDK app once per session (cdk.json context, bundling skipped).

Skipping bundling does not change the template: each function's asset hash is a digest of its
pinned requirements and the package source, computed without bundling. The real bundles are
built and checked in ``test_bundling.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import STACK_NAME, build
from infra.stacks.service_stack import CryptoSmartTraderStack

REPO_ROOT = Path(__file__).resolve().parents[2]
SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert isinstance(context, dict)
    return context


@dataclass(frozen=True)
class Synthesized:
    stack: CryptoSmartTraderStack
    outdir: Path
    template_path: Path
    template: Template
    resources: Mapping[str, Any]

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def synthesize(outdir: Path, extra_context: Mapping[str, Any] | None = None) -> Synthesized:
    app = App(outdir=str(outdir), context={**cdk_json_context(), **(extra_context or {})})
    stack = build(app)
    app.synth()
    template_path = outdir / f"{STACK_NAME}.template.json"
    raw = json.loads(template_path.read_text())
    return Synthesized(stack, outdir, template_path, Template.from_json(raw), raw["Resources"])


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"), SKIP_BUNDLING)


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template

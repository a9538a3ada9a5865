"""Synthesize the CDK app once per test run (cdk.json context, bundling skipped).

Skipping bundling does not change the template: each function's asset hash is a digest of its
pinned requirements and the package source, computed without bundling. The real bundles are
built and checked in ``test_bundling.py``.

The synth (cdk-nag validation included) is most of the cost, so its cloud assembly is cached in
the temp dir under a digest of everything that decides it (``infra/``, ``functions/``,
``cdk.json``, the extra context, the CDK version), behind a file lock: the first xdist worker or
module that needs it synthesizes, every other one reads the same template. Each worker still
builds the construct tree (cheap) so tests can resolve logical IDs from the constructs.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import shutil
import tempfile
import time
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
class SynthesizedTemplate:
    """A synthesized template, without the constructs behind it."""

    outdir: Path
    template_path: Path
    resources: Mapping[str, Any]

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}


@dataclass(frozen=True)
class Synthesized(SynthesizedTemplate):
    stack: CryptoSmartTraderStack
    template: Template

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def _app(outdir: Path | None, extra_context: Mapping[str, Any] | None) -> App:
    context = {**cdk_json_context(), **(extra_context or {})}
    return App(context=context) if outdir is None else App(outdir=str(outdir), context=context)


def synthesize(outdir: Path, extra_context: Mapping[str, Any] | None = None) -> Synthesized:
    """A fresh synth into ``outdir`` (for tests that check the synth itself)."""
    app = _app(outdir, extra_context)
    stack = build(app)
    app.synth()
    return _synthesized(stack, _template_at(outdir))


def _template_at(outdir: Path) -> SynthesizedTemplate:
    template_path = outdir / f"{STACK_NAME}.template.json"
    raw = json.loads(template_path.read_text())
    return SynthesizedTemplate(outdir, template_path, raw["Resources"])


def _synthesized(stack: CryptoSmartTraderStack, synthesized: SynthesizedTemplate) -> Synthesized:
    raw = json.loads(synthesized.template_path.read_text())
    return Synthesized(
        synthesized.outdir,
        synthesized.template_path,
        synthesized.resources,
        stack,
        Template.from_json(raw),
    )


def synth_key(extra_context: Mapping[str, Any] | None = None) -> str:
    """Digest of everything a synth's output depends on."""
    digest = hashlib.sha256()
    cdk_version = importlib.metadata.version("aws-cdk-lib")
    for part in (str(REPO_ROOT), cdk_version, json.dumps(extra_context, sort_keys=True)):
        digest.update(part.encode())
        digest.update(b"\0")
    sources = [REPO_ROOT / "cdk.json"]
    for folder in ("infra", "functions"):
        sources += sorted(
            p
            for p in (REPO_ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    for path in sources:
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


_CACHE_DIR = Path(tempfile.gettempdir()) / "cst-synth-cache"
_STALE_AFTER_S = 24 * 3600
_in_process: dict[str, SynthesizedTemplate] = {}


def synthesized_template(extra_context: Mapping[str, Any] | None = None) -> SynthesizedTemplate:
    """The app synthesized once per content and context, shared by every worker of a run."""
    key = synth_key(extra_context)
    if key in _in_process:
        return _in_process[key]
    # a day-old cached assembly being reused is touched so the clean-up below keeps it
    _CACHE_DIR.mkdir(parents=True, exist_ok=True)
    target = _CACHE_DIR / key
    with (_CACHE_DIR / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also on an error
        if (target / f"{STACK_NAME}.template.json").is_file():
            target.touch()
        else:
            shutil.rmtree(target, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=_CACHE_DIR))
            try:
                app = _app(staging, extra_context)
                build(app)
                app.synth()  # cdk-nag validates here: a finding fails whoever synthesizes
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        # assemblies of other contents (earlier edits; other checkouts, which differ by path):
        # a few MB each, dropped after a day unused so that no running test loses its template
        for stale in _CACHE_DIR.iterdir():
            if stale.is_dir() and time.time() - stale.stat().st_mtime > _STALE_AFTER_S:
                shutil.rmtree(stale, ignore_errors=True)
    _in_process[key] = _template_at(target)
    return _in_process[key]


def synthesized_with(extra_context: Mapping[str, Any]) -> Synthesized:
    """The construct tree for ``extra_context`` (built in this process, for logical IDs; a
    couple of seconds) and the template synthesized once per run for it (the synth and its
    cdk-nag validation: most of the cost), shared by every worker and module."""
    shared = synthesized_template(extra_context)
    return _synthesized(build(_app(None, extra_context)), shared)


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    """The construct tree (built in this worker, for logical IDs) and the shared template."""
    return synthesized_with(SKIP_BUNDLING)


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template

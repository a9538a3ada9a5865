"""Which modules a fresh interpreter has imported after running some code: the structural check
of a cold start (a Lambda handler's, the CLI's), never a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FreshRun:
    loaded: list[str]  # the watched modules the interpreter had imported, sorted
    answer: Any  # what the code left in ``answer`` (JSON-able), None if it set nothing
    stdout: str


def run_fresh(
    code: str, watched: Iterable[str], env: Mapping[str, str | None] | None = None
) -> FreshRun:
    """Run ``code`` in a new interpreter of this environment and list which of ``watched`` it
    imported. ``env`` sets variables over this process's environment (``None`` removes one)."""
    probe = (
        f"import sys, json\nanswer = None\n{code}\n"
        f"print(json.dumps({{'loaded': sorted(m for m in {sorted(watched)!r} if m in sys.modules),"
        " 'answer': answer}))"
    )
    environ = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=environ,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    return FreshRun(loaded=last["loaded"], answer=last["answer"], stdout=done.stdout)

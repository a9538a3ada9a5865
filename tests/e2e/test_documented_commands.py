"""Every command in README.md, README_OPERATIONS.md and docs/*.md runs as written.

The commands are read from the fenced shell blocks (```bash, ```sh or unlabelled blocks whose
lines start with a known program) and run in document order with ``bash``, one scratch
directory per document: ``CST_STATE_DIR`` is a fresh temp dir, the working directory is a temp
dir that links the repository's files and puts the real shared data at ``../shared/data``
(where the docs say it is), so what a command writes (reports, state) never lands in the
repository. ``uv run`` runs in the project's environment as installed (``UV_NO_SYNC``: it must
not re-sync a suite's environment mid-run).

A command that cannot run here is listed in ``EXCLUDED`` with its reason and is still checked
as far as possible (its options parse, the files it names exist, the target it runs exists).
The README's command table is checked the same way: every option it lists parses.

A failure names the document, the line, the command and the tail of its output.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "README_OPERATIONS.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
PROGRAMS = {"uv", "cst", "make", "npx", "aws", "curl", "python", "export"}
COMMAND_TIMEOUT_S = 600

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@dataclass(frozen=True)
class Command:
    doc: str  # path relative to the repository
    line: int
    text: str  # one logical line, continuations joined, comment removed
    # the exit code the document promises: a trailing ``# exits N: why`` comment (a refusal the
    # document shows on purpose, e.g. a model that fails the skill gate); 0 otherwise
    expect: int = 0

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


# --------------------------------------------------------------------------- extraction

_FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```", re.S | re.M)


def _strip_comment(line: str) -> str:
    """Drop a trailing ``# comment`` that is outside quotes."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _first_program(line: str) -> str:
    if re.match(r"[A-Z_][A-Z0-9_]*=\$\(", line):  # VAR=$(command ...): a command
        return "assignment"
    words = line.split()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return ""
    head = words[0]
    return "assignment" if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", head) else head


_EXITS = re.compile(r"#\s*exits\s+(\d+)\b")


def commands_in(doc: Path) -> list[Command]:
    text = doc.read_text(encoding="utf-8")
    out: list[Command] = []
    for fence in _FENCE.finditer(text):
        if fence.group(1) not in {"", "bash", "sh", "shell", "console"}:
            continue
        start_line = text.count("\n", 0, fence.start(2)) + 1
        pending = ""
        pending_line = 0
        for offset, raw in enumerate(fence.group(2).splitlines()):
            line = raw if pending else raw.strip()
            if not pending:
                pending_line = start_line + offset
            if line.rstrip().endswith("\\"):
                pending += line.strip()[:-1].rstrip() + " "
                continue
            whole = pending + line.strip()
            logical = _strip_comment(whole)
            pending = ""
            promised = _EXITS.search(whole[len(logical) :])
            expect = int(promised.group(1)) if promised else 0
            head = _first_program(logical)
            if head in PROGRAMS or head == "assignment":
                out.append(Command(str(doc.relative_to(REPO)), pending_line, logical, expect))
    return out


def readme_table() -> list[Command]:
    """The synopses in the README's `Using cst` table (first column)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    out = []
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            section = line
        if section != "## Using `cst`" or not line.startswith("| `cst "):
            continue
        cell = line.split(" | ")[0].removeprefix("| ")
        for synopsis in re.findall(r"`(cst [^`]+)`", cell):
            out.append(Command("README.md", number, synopsis.replace("\\|", "|")))
    return out


# --------------------------------------------------------------------------- option check


@functools.cache
def _cst_help_of(path: tuple[str, ...]) -> str:
    """The help `cst <path> --help` prints, from the same typer app in this process (each
    synopsis asks for its parents' help again: one Python start-up per help was most of this
    check's time). The documented commands themselves still run `cst` as written."""
    from typer.testing import CliRunner

    from cryptosmarttrader.cli import app

    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "300", "NO_COLOR": "1"})
    assert done.exit_code == 0, f"`cst {' '.join(path)} --help` failed: {done.output[-500:]}"
    return done.stdout


def _cst_help(path: list[str]) -> str:
    return _cst_help_of(tuple(path))


def options_parse(synopsis: str) -> list[str]:
    """Problems with a `cst ...` synopsis: unknown command path or an option --help lacks."""
    words = shlex.split(re.sub(r"[\[\]]", " ", synopsis.split("cst ", 1)[1]).replace("|", " "))
    path: list[str] = []
    problems: list[str] = []
    help_text = _cst_help([])
    for word in words:
        if word.startswith("-"):
            break
        # a sub-command is listed in its parent's help; alternatives (on|off|status) each are
        if re.search(rf"^\W*{re.escape(word)}\s", help_text, re.M):
            path.append(word)
            help_text = _cst_help(path)
        elif not path or not re.fullmatch(r"[a-z]+", word):
            continue  # an argument value (a version number, a placeholder)
    for option in {w.split("=", 1)[0] for w in words if w.startswith("--")}:
        if option not in help_text:
            problems.append(f"`cst {' '.join(path)}` has no option {option}")
    if not path:
        problems.append(f"no cst command in {synopsis!r}")
    return problems


# --------------------------------------------------------------------------- exclusions


@dataclass(frozen=True)
class Exclusion:
    reason: str
    check: Callable[[Command], list[str]] = field(default=lambda _: [])


def _cst_options(command: Command) -> list[str]:
    return options_parse(command.text.replace("uv run ", "", 1))


def _make_dry_run(command: Command) -> list[str]:
    target = command.text.split()[1]
    done = subprocess.run(
        ["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=False
    )
    return [] if done.returncode == 0 else [f"`make -n {target}`: {done.stderr.strip()}"]


def _files_exist(command: Command) -> list[str]:
    missing = [
        word
        for word in shlex.split(command.text)
        if re.match(r"(tests|bench|infra|ml)/", word) and not (REPO / word).exists()
    ]
    return [f"{command.where}: no file {m}" for m in missing]


def _bench_parses(command: Command) -> list[str]:
    (script,) = [w for w in command.text.split() if w.startswith("bench/")]
    done = subprocess.run(
        [sys.executable, str(REPO / script), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return [] if done.returncode == 0 else [f"{script} --help: {done.stderr[-300:]}"]


def _api_paths_exist(command: Command) -> list[str]:
    from cryptosmarttrader.handlers.api import openapi_json

    paths = set(json.loads(openapi_json())["paths"])
    used = re.findall(r"(/api/v1/[a-z/]+|/health|/openapi\.json)", command.text)
    return [f"{command.where}: no API path {p}" for p in used if p not in paths]


def _names_exist(command: Command) -> list[str]:
    """AWS CLI commands: the names they use (stack outputs, parameters, metrics) are real."""
    from cryptosmarttrader.domain import metric_names
    from cryptosmarttrader.settings import AwsResources

    problems = []
    from cryptosmarttrader.adapters import web_publish

    infra = " ".join(p.read_text() for p in (REPO / "infra").rglob("*.py"))
    # the dashboard's output names live with their reader, `cst web publish`
    outputs = {*re.findall(r"CfnOutput\(\s*self,\s*\"(\w+)\"", infra)} | {
        getattr(web_publish, n) for n in dir(web_publish) if n.startswith("OUTPUT_")
    }
    for output in re.findall(r"OutputKey=='(\w+)'", command.text):
        if output not in outputs and output not in infra:
            problems.append(f"{command.where}: no stack output {output} in infra/")
    for param in re.findall(r"--name (/\S+)", command.text):
        if param != AwsResources().kill_switch_param:
            problems.append(f"{command.where}: {param} is not the kill-switch parameter")
    for metric in re.findall(r"--metric-name (\w+)", command.text):
        names = {v.name for v in vars(metric_names).values() if hasattr(v, "unit")}
        if metric not in names:
            problems.append(f"{command.where}: no metric {metric}")
    return problems


BUNDLING_TEST = REPO / "tests" / "infrastructure" / "test_bundling.py"
BUNDLING_SYNTH_TEST = "test_cdk_cli_synth_bundles_and_matches_the_tested_template"


def _synth_runs_in_the_bundling_test(command: Command) -> list[str]:
    """The documented synth is the command line the bundling test runs, from a checkout of the
    repository's files: the test's ``DOCUMENTED_SYNTH`` is this line and its synth runs it."""
    tree = ast.parse(BUNDLING_TEST.read_text(encoding="utf-8"))
    line = next(
        (
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["DOCUMENTED_SYNTH"]
        ),
        None,
    )
    test = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == BUNDLING_SYNTH_TEST),
        None,
    )
    where = f"tests/infrastructure/test_bundling.py::{BUNDLING_SYNTH_TEST}"
    if line is None or test is None:
        return [f"{command.where}: {where} or its DOCUMENTED_SYNTH is gone"]
    if tuple(shlex.split(command.text)) != line:
        return [f"{command.where}: {where} runs {' '.join(line)!r}, not {command.text!r}"]
    runs = ast.unparse(test)
    if "[npx, *DOCUMENTED_SYNTH[1:]]" not in runs or "cwd=checkout" not in runs:
        return [f"{command.where}: {where} no longer runs DOCUMENTED_SYNTH from a checkout"]
    return []


NEEDS_AWS = "needs a deployed stack and AWS credentials (no AWS account here)"

# pattern (matched against the command as written) → why it cannot run here, and what is checked
EXCLUDED: dict[str, Exclusion] = {
    r"^make test\b": Exclusion("it is the suite this test belongs to", _make_dry_run),
    r"^make demo\b": Exclusion(
        "runs `cst demo` (minutes), which tests/e2e/test_demo.py runs end to end",
        _make_dry_run,
    ),
    r"^make deploy\b": Exclusion(NEEDS_AWS + "; `make web` and the synth run above", _make_dry_run),
    r"^(SM=\$\()?aws ": Exclusion(NEEDS_AWS, _names_exist),
    r"^curl .*\$API": Exclusion(NEEDS_AWS, _api_paths_exist),
    r"^uv run cst api serve": Exclusion(
        "serves until stopped; tests/integration/test_api_server.py runs it and talks HTTP to it",
        _cst_options,
    ),
    r"^curl .*127\.0\.0\.1:8080": Exclusion(
        "talks to the `cst api serve` above; tests/integration/test_api_http.py does the same",
        _api_paths_exist,
    ),
    r"^npx --yes aws-cdk@2 synth$": Exclusion(
        "the same command line on the same app (cdk.json, bundling on) is run, and its template "
        "and assets checked, by tests/infrastructure/test_bundling.py::"
        "test_cdk_cli_synth_bundles_and_matches_the_tested_template",
        _synth_runs_in_the_bundling_test,
    ),
    r"^npx --yes aws-cdk@2 (bootstrap|deploy)": Exclusion(
        NEEDS_AWS + "; the same app is synthesized above (cdk synth, cdk-nag)"
    ),
    r"^uv pip install .*<function>": Exclusion(
        "downloads ~100 MB of Lambda wheels per function; tests/infrastructure/test_bundling.py "
        "builds the bundles"
    ),
    r"^uv run cst local up(?! --endpoint)": Exclusion(
        "deploys the synthesized stacks to a moto server with cdklocal (minutes); "
        "tests/e2e/test_local_deploy.py runs that deployment",
        _cst_options,
    ),
    r"^uv run cst local (status|down)": Exclusion(
        "acts on the server of `cst local up --detach` (excluded above)", _cst_options
    ),
    r"^uv run cst local up --endpoint": Exclusion(
        "needs LocalStack, which needs Docker (not on this machine)", _cst_options
    ),
    r"^uv run cst model train --on sagemaker": Exclusion(
        NEEDS_AWS + " (a SageMaker training job)", _cst_options
    ),
    r"^uv run pytest ": Exclusion("a test run: these files run in the suite itself", _files_exist),
    r"^uv run python bench/": Exclusion(
        "a benchmark (`make bench`): minutes of CPU by design, no assertion to make",
        _bench_parses,
    ),
    r"^uv run python -c .*ThreadedMotoServer": Exclusion(
        "waits for input on a fixed port (5000) of a shared machine; the next command is run "
        "against a moto server of this test instead"
    ),
}


def exclusion_for(command: Command) -> Exclusion | None:
    for pattern, exclusion in EXCLUDED.items():
        if re.search(pattern, command.text):
            return exclusion
    return None


# --------------------------------------------------------------------------- running


@dataclass
class Scratch:
    cwd: Path
    env: dict[str, str]
    moto_port: int | None = None


@pytest.fixture
def scratch(data_dir: Path, tmp_path: Path) -> Scratch:
    """A working dir linking the repository's files, ../shared/data → the real data, and a
    fresh CST_STATE_DIR."""
    cwd = tmp_path / "work" / "repo"
    cwd.mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name not in {".git", ".venv", ".cst", "cdk.out"}:
            (cwd / entry.name).symlink_to(entry)
    (tmp_path / "work" / "shared").mkdir()
    (tmp_path / "work" / "shared" / "data").symlink_to(data_dir.resolve())
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "CST_STATE_DIR": str(tmp_path / "state"),
        "CST_DATA_DIR": str(data_dir.resolve()),
        "UV_PROJECT_ENVIRONMENT": str(VENV_BIN.parent),
        "UV_NO_SYNC": "1",
        "UV_FROZEN": "1",
        "COLUMNS": "200",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("CST_PROGRESS", None)
    return Scratch(cwd, env)


def _newest_golive_run(scratch: Scratch) -> str:
    done = subprocess.run(
        ["cst", "golive", "status", "--json"],
        cwd=scratch.cwd,
        env=scratch.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    run_id: str = json.loads(done.stdout)["run"]["run_id"]
    return run_id


# placeholders a user fills in from what the previous commands printed
PLACEHOLDERS: dict[str, Callable[[Scratch], str]] = {"<id>": _newest_golive_run}


def _as_run(command: Command, scratch: Scratch) -> str:
    text = re.sub(r"\s\[[^\]]*\]", "", command.text)  # optional parts: the minimal form
    for placeholder, fill in PLACEHOLDERS.items():
        if placeholder in text:
            text = text.replace(placeholder, shlex.quote(fill(scratch)))
    if "localhost:5000" in text and scratch.moto_port is not None:
        text = text.replace("localhost:5000", f"127.0.0.1:{scratch.moto_port}")
    return text


def run_documented(command: Command, scratch: Scratch) -> tuple[list[str], float]:
    text = _as_run(command, scratch)
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["bash", "-c", text],
            cwd=scratch.cwd,
            env=scratch.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [f"{command.where}: `{text}` did not finish in {COMMAND_TIMEOUT_S} s"], float(
            COMMAND_TIMEOUT_S
        )
    seconds = time.monotonic() - started
    if done.returncode == command.expect:
        return [], seconds
    tail = (done.stderr.strip() or done.stdout.strip())[-800:]
    promised = f" (the document says it exits {command.expect})" if command.expect else ""
    return [f"{command.where}: `{text}` exited {done.returncode}{promised}:\n{tail}"], seconds


@pytest.fixture(scope="module")
def moto_server_port() -> Iterator[int]:
    """One moto server for the documents of this module; :func:`moto_server` empties it before
    and after each document. The quick one (no Nagle stall on its kept-alive answers)."""
    from cst_devtools.faults import free_port
    from cst_devtools.loopback_http import quick_moto_server

    port = free_port()
    server = quick_moto_server("127.0.0.1", port)
    server.start()
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
def moto_server(scratch: Scratch, moto_server_port: int) -> Iterator[Scratch]:
    from cst_devtools.local_deploy import reset_moto_backends

    port = moto_server_port
    reset_moto_backends(port)  # moto's backends are per process: start empty, leave nothing
    scratch.moto_port = port
    try:
        yield scratch
    finally:
        reset_moto_backends(port)


DOC_IDS = [str(doc.relative_to(REPO)) for doc in DOCS]


@pytest.mark.parametrize("doc", DOC_IDS)
def test_every_documented_command_runs_as_written(
    doc: str, moto_server: Scratch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the commands of one document, in order, on scratch state and the real data
    commands = commands_in(REPO / doc)
    problems: list[str] = []
    timings: list[str] = []
    # When each runs (or, excluded with a reason, is checked as far as possible)
    for command in commands:
        exclusion = exclusion_for(command)
        if exclusion is not None:
            problems += exclusion.check(command)
            timings.append(f"  excluded {command.where}: {command.text[:70]}")
            continue
        failed, seconds = run_documented(command, moto_server)
        problems += failed
        timings.append(f"  {seconds:6.1f} s {command.where}: {command.text[:70]}")
    with capsys.disabled():
        print(f"\n{doc}:\n" + "\n".join(timings))
    # Then every one succeeded
    assert not problems, "\n\n".join(problems)


def test_every_option_in_the_readme_command_table_parses() -> None:
    table = readme_table()
    assert len(table) >= 14, "the README's `Using cst` table was not found"
    problems = [p for command in table for p in options_parse(command.text)]
    assert not problems, "\n".join(problems)


def test_every_exclusion_still_matches_a_documented_command() -> None:
    documented = [c for doc in DOCS for c in commands_in(doc)]
    stale = [
        pattern for pattern in EXCLUDED if not any(re.search(pattern, c.text) for c in documented)
    ]
    assert not stale, f"exclusions that match no documented command: {stale}"


def test_the_extractor_finds_the_commands_of_each_kind_of_block() -> None:
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:
        doc = Path(tmp) / "x.md"
        doc.write_text(
            "```bash\nuv run cst scan --asof 2021-05-01 \\\n    --top 3   # three\n```\n"
            "```\n.cst/\n  lake/   objects\n```\n"
            "```\nCST_UNIVERSE=tradable cst scan --asof 2022-09-29 --top 3\n```\n"
            '```python\nprint("not shell")\n```\n'
            "```bash\nuv run cst model promote 1 --reason x  # exits 2: refused\n```\n"
        )
        found = [(c.text, c.expect) for c in commands_in(doc)]
    assert found == [
        ("uv run cst scan --asof 2021-05-01 --top 3", 0),
        ("CST_UNIVERSE=tradable cst scan --asof 2022-09-29 --top 3", 0),
        ("uv run cst model promote 1 --reason x", 2),
    ]
    shutil.rmtree(tmp, ignore_errors=True)


def test_the_documented_synth_stands_excluded_only_while_the_bundling_test_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the documented synth line and the bundling test as it is
    (synth,) = [
        c
        for c in commands_in(REPO / "docs" / "infrastructure.md")
        if re.fullmatch(r"npx --yes aws-cdk@2 synth", c.text)
    ]
    exclusion = exclusion_for(synth)
    assert exclusion is not None and BUNDLING_SYNTH_TEST in exclusion.reason
    assert exclusion.check(synth) == []
    source = BUNDLING_TEST.read_text(encoding="utf-8")
    drifts = {
        "another line": source.replace(
            'DOCUMENTED_SYNTH = ("npx", "--yes", "aws-cdk@2", "synth")',
            'DOCUMENTED_SYNTH = ("npx", "--yes", "aws-cdk@2", "synth", "--quiet")',
        ),
        "not run": source.replace("[npx, *DOCUMENTED_SYNTH[1:]]", '[npx, "--yes", "aws-cdk@2"]'),
        "test renamed": source.replace(BUNDLING_SYNTH_TEST, "test_renamed"),
    }
    for what, drifted in drifts.items():
        assert drifted != source, what
        copy = tmp_path / f"{what.replace(' ', '_')}.py"
        copy.write_text(drifted, encoding="utf-8")
        monkeypatch.setattr(sys.modules[__name__], "BUNDLING_TEST", copy)
        # When the bundling test drifts, then the exclusion's check fails
        assert exclusion.check(synth) != [], what

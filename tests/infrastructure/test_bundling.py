"""Lambda bundles: pins match uv.lock, the hash tracks content, real bundles fit and import.

The real-bundle tests build with uv for CPython 3.12 / manylinux aarch64, the arm64 (Graviton)
functions' platform (cached under ``.cst/lambda-bundles``; the first run downloads wheels,
~1 min), check that every shared object in them is an aarch64 ELF, and import every dependency
and handler in a CPython 3.12 process from the bundle's twin built for this machine's
architecture from the same pins by the same steps (it holds the same Python files), with boto3
from the lock standing in for the Lambda runtime's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.bundling import (
    BYTECODE_BUNDLES,
    ELF_MACHINES,
    IMPORTABLE_PYTHON_PLATFORM,
    LAMBDA_ARCHITECTURE,
    LAMBDA_PYTHON_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    REQUIREMENTS_DIR,
    BundlingError,
    UvLocalBundling,
    build_bundle,
    bundle_hash,
    cached_bundle,
    check_hashed,
    directory_size_bytes,
    elf_machine,
    install_command,
    python312,
    requirement_entries,
    requirements_file,
    strip_shared_objects,
)
from infra.constructs.python_function import PythonFunction
from infra.lambda_requirements.compile import NOT_SHIPPED, RUNTIME_PROVIDED
from tests.infrastructure.conftest import REPO_ROOT, Synthesized

PACKAGE_DIR = REPO_ROOT / "functions" / "cryptosmarttrader"
FUNCTIONS = {
    "ingest": {
        "handler": "cryptosmarttrader.handlers.ingest",
        "imports": ["ccxt", "polars", "numpy", "pydantic", "pydantic_settings",
                    "aws_lambda_powertools", "aws_xray_sdk"],
        "absent": ["talib", "pyarrow", "moto", "tenacity", "typer", "rich", "boto3", "botocore",
                   "ccxt/async_support", "ccxt/pro",
                   # ccxt's asyncio stack and coincurve (compile.NOT_SHIPPED)
                   "aiohttp", "aiohttp_fast_zlib", "zlib_ng", "aiohappyeyeballs", "aiosignal",
                   "attr", "attrs", "frozenlist", "multidict", "propcache", "yarl", "uvloop",
                   "coincurve"],
    },
    "scan": {
        "handler": "cryptosmarttrader.handlers.scan",
        "imports": ["polars", "numpy", "talib", "pydantic", "pydantic_settings",
                    "aws_lambda_powertools", "aws_xray_sdk"],
        "absent": ["ccxt", "pyarrow", "moto", "tenacity", "typer", "rich", "boto3", "botocore"],
    },
    "execute": {
        "handler": "cryptosmarttrader.handlers.execute",
        # the testnet and live venues (a paper deployment never imports them)
        "imports": ["ccxt", "polars", "numpy", "talib", "pydantic", "pydantic_settings",
                    "aws_lambda_powertools", "aws_xray_sdk", "cryptosmarttrader.venues"],
        "absent": ["pyarrow", "moto", "typer", "rich", "boto3", "botocore", "ccxt/async_support",
                   "ccxt/pro", "aiohttp", "yarl", "uvloop", "coincurve"],
    },
    "api": {
        "handler": "cryptosmarttrader.handlers.api",
        "imports": ["pydantic", "pydantic_settings", "aws_lambda_powertools", "aws_xray_sdk"],
        "absent": ["polars", "numpy", "talib", "xgboost", "ccxt", "pyarrow", "moto", "typer",
                   "rich", "boto3", "botocore"],
    },
    "health_probe": {
        "handler": "cryptosmarttrader.handlers.health_probe",
        "imports": ["pydantic", "pydantic_settings", "aws_lambda_powertools", "aws_xray_sdk"],
        "absent": ["polars", "numpy", "ccxt", "pyarrow", "moto", "typer", "rich", "boto3",
                   "botocore"],
    },
    "killswitch": {
        "handler": "cryptosmarttrader.handlers.alarm_killswitch",
        "imports": ["pydantic_core", "aws_lambda_powertools"],
        "absent": ["polars", "numpy", "talib", "xgboost", "ccxt", "pyarrow", "moto", "typer",
                   "rich", "boto3", "botocore", "pydantic", "pydantic_settings", "aws_xray_sdk"],
    },
}  # fmt: skip

# Every Lambda zip should stay under 100 MB unzipped. The bundles that read Parquet candles
# carry polars, whose native runtime alone (``_polars_runtime_32``) is 115 MiB on aarch64 after
# stripping: no polars distribution on PyPI fits beside numpy (measured in docs/infrastructure.md).
# Each of them has its own bound instead, its measured size (aarch64, stripped and pruned) plus
# ~1.5 MiB for the package's own code to grow: the test fails when one grows past its bound, when
# one gets under 100 MB (drop it from here), and when any other bundle grows over 100 MB.
FOOTPRINT_BOUND_BYTES = 100 * 1024 * 1024
OVER_FOOTPRINT_BOUND: Mapping[str, int] = {
    # 202.7 MiB: polars 119.5, numpy 37.9, ccxt 18.5, cryptography 10.4
    "ingest": 204 * 1024 * 1024,
    "scan": 180 * 1024 * 1024,  # 178.5 MiB: polars 119.5, numpy 37.9, TA-Lib 7.8
    "execute": 212 * 1024 * 1024,  # 210.5 MiB: the scan's and ccxt 18.5, cryptography 10.4
    "drift": 180 * 1024 * 1024,  # same requirement list as the scan
    "model": 180 * 1024 * 1024,  # same requirement list as the scan
}
# What keeps them over: polars' native runtime, over 100 MB on its own
POLARS_RUNTIME = "_polars_runtime_32"
# Functions that must start without polars or numpy: their bundles do not even ship them (the
# API's lake routes run the same API handler as ``lake_views_handler``, from the scan bundle).
LEAN_HANDLERS = frozenset(
    {
        "cryptosmarttrader.handlers.api.handler",
        "cryptosmarttrader.handlers.kill_switch_seed.handler",
        "cryptosmarttrader.handlers.kill_switch_audit.handler",
        "cryptosmarttrader.handlers.alarm_killswitch.handler",
        "cryptosmarttrader.handlers.health_probe.handler",
        "cryptosmarttrader.handlers.golive_steps.handler",
        "cryptosmarttrader.handlers.golive_slo.handler",
    }
)


# Handler defects this test found, matched on the exact error so any other failure still fails.


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for entry in requirement_entries(path):
        name, _, version = entry.split()[0].partition("==")
        pins[name.lower()] = version
    return pins


def _lock_versions() -> dict[str, set[str]]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"].lower(), set()).add(package["version"])
    return versions


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_pin_is_a_version_from_uv_lock(name: str) -> None:
    # Given the function's pinned requirements and the project lock
    pins = _pins(requirements_file(name))
    locked = _lock_versions()

    # Then each pin is exact and is the version the test suite runs against
    assert pins
    assert all(version for version in pins.values()), pins
    mismatched = {n: v for n, v in pins.items() if v not in locked.get(n, set())}
    assert mismatched == {}
    # and runtime-provided or dev-only packages are not shipped
    assert not set(pins) & {*RUNTIME_PROVIDED, "pyarrow", "moto", "typer", "rich"}
    # nor what the function's code never imports although a wheel declares it
    assert not set(pins) & set(NOT_SHIPPED.get(name, ()))


@pytest.mark.parametrize("path", sorted(REQUIREMENTS_DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_every_lambda_requirement_is_pinned_with_its_hashes(path: Path) -> None:
    # Given a function's requirement list
    entries = requirement_entries(path)

    # Then every requirement is an exact pin with at least one SHA-256 (what --require-hashes
    # installs), and the check bundling runs agrees
    assert entries
    for entry in entries:
        name, *options = entry.split()
        assert "==" in name, entry
        assert options and all(o.startswith("--hash=sha256:") for o in options), entry
        assert all(len(o.removeprefix("--hash=sha256:")) == 64 for o in options), entry
    check_hashed(path)
    assert "--require-hashes" in install_command(path, Path("/tmp/unused"))


@pytest.mark.parametrize(
    "content",
    [
        "polars==2.1.0\n",  # no hash at all
        "annotated-types==0.8.0 \\\n    --hash=sha256:"
        + "0" * 64
        + "\npolars==2.1.0\n",  # one unhashed
        "polars>=2\n    --hash=sha256:" + "0" * 64 + "\n",  # hashed but not pinned
        "# only a comment\n",
    ],
    ids=["no-hash", "one-unhashed", "unpinned", "empty"],
)
def test_bundling_refuses_a_requirements_file_without_hashes(tmp_path: Path, content: str) -> None:
    # Given a requirement list that --require-hashes could not verify
    requirements = tmp_path / "fn.txt"
    requirements.write_text(content)
    destination = tmp_path / "out"
    destination.mkdir()

    # When a bundle is built from it, Then it is refused before anything is installed
    with pytest.raises(BundlingError, match=r"not pinned with a --hash|lists no requirement"):
        build_bundle(requirements, PACKAGE_DIR, destination)
    assert list(destination.iterdir()) == []


def test_a_wheel_that_does_not_match_its_pinned_hash_fails_the_build(tmp_path: Path) -> None:
    # Given a real pin whose hash is not the wheel's (a swapped or tampered distribution)
    requirements = tmp_path / "fn.txt"
    requirements.write_text("annotated-types==0.8.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    destination = tmp_path / "out"
    destination.mkdir()

    # When it is installed for the Lambda platform, Then uv refuses it and the build fails
    with pytest.raises(BundlingError, match=r"(?i)hash"):
        build_bundle(requirements, PACKAGE_DIR, destination)
    assert not (destination / "annotated_types").exists()


def test_a_synth_links_the_kept_bundle_into_the_asset_instead_of_copying_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.constructs import bundling

    # Given a kept bundle (one file in a package folder)
    kept = tmp_path / "kept"
    (kept / "pkg").mkdir(parents=True)
    (kept / "pkg" / "mod.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(bundling, "cached_bundle", lambda *_args: kept)
    local = UvLocalBundling("scan", tmp_path / "scan.txt", tmp_path / "src")
    # When CDK asks for the asset, into a fresh folder and into one that already holds the file
    fresh, existing = tmp_path / "asset", tmp_path / "again"
    (existing / "pkg").mkdir(parents=True)
    (existing / "pkg" / "mod.py").write_text("stale\n")
    assert local.try_bundle(str(fresh)) and local.try_bundle(str(existing))
    # and once more into the fresh one (its file already is the kept one)
    assert local.try_bundle(str(fresh))
    # Then each asset's file is the kept file itself (same inode: nothing copied), the stale
    # file was replaced rather than written through, and the kept content is intact
    for asset in (fresh, existing):
        assert (asset / "pkg" / "mod.py").stat().st_ino == (kept / "pkg" / "mod.py").stat().st_ino
    assert (kept / "pkg" / "mod.py").read_text() == "VALUE = 1\n"


def test_stripping_skips_files_that_only_look_like_shared_objects(tmp_path: Path) -> None:
    # Given a wheel's data file whose name matches *.so* (".some-named") but is no ELF
    data = tmp_path / "pkg" / "v0.7.1.some-named-index.parquet"
    data.parent.mkdir()
    data.write_bytes(b"PAR1" + b"\0" * 60 + b"PAR1")

    # When the bundle's shared objects are stripped, Then the file is left as it is (a strip of
    # it fails: "not recognized as a valid object file")
    strip_shared_objects(tmp_path)
    assert data.read_bytes() == b"PAR1" + b"\0" * 60 + b"PAR1"


def test_bundle_hash_follows_source_and_requirements_not_bytecode(tmp_path: Path) -> None:
    # Given a package and a requirement list
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("X = 1\n")
    requirements = tmp_path / "r.txt"
    requirements.write_text("polars==2.1.0\n")
    before = bundle_hash(requirements, package)

    # When only bytecode appears, the hash is unchanged
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"\0")
    assert bundle_hash(requirements, package) == before

    # When the source changes, or a pin changes, the hash changes
    (package / "mod.py").write_text("X = 2\n")
    after_source = bundle_hash(requirements, package)
    requirements.write_text("polars==2.0.0\n")
    after_pin = bundle_hash(requirements, package)
    assert len({before, after_source, after_pin}) == 3


def _python312() -> Path:
    candidates = [os.environ.get("CST_PYTHON312", "")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))]
    candidates += [shutil.which("python3.12") or ""]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.stdout.strip() == "True":
            return Path(candidate)
    message = "CPython 3.12 not found (set CST_PYTHON312); it is needed to import the bundles"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def runtime_boto3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 & co at the lock's versions: what the Lambda runtime adds to ``sys.path``."""
    locked = _lock_versions()
    target = tmp_path_factory.mktemp("lambda-runtime")
    specs = [f"{name}=={max(locked[name])}" for name in RUNTIME_PROVIDED if name in locked]
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--no-deps", "--only-binary", ":all:",
         "--python-version", LAMBDA_PYTHON_VERSION, "--python-platform", IMPORTABLE_PYTHON_PLATFORM,
         "--target", str(target), *specs],
        check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    return target


@pytest.fixture(scope="session", params=sorted(FUNCTIONS))
def bundle(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """The deployed (aarch64) bundle of a function."""
    name: str = request.param
    return name, cached_bundle(name, requirements_file(name), PACKAGE_DIR)


def _twin(name: str) -> Path:
    """The same bundle built for this machine's architecture: the one a test can import."""
    return cached_bundle(name, requirements_file(name), PACKAGE_DIR, IMPORTABLE_PYTHON_PLATFORM)


def _machines(root: Path) -> dict[str, int | None]:
    """Each shared object of a bundle → its ELF machine."""
    return {
        str(p.relative_to(root)): elf_machine(p)
        for p in sorted(root.rglob("*.so*"))
        if p.is_file() and not p.is_symlink()
    }


def _python_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.py")}


@pytest.mark.parametrize("name", sorted(BYTECODE_BUNDLES))
def test_the_kill_switch_bundle_ships_cpython_312_bytecode_for_every_module(name: str) -> None:
    # Given the kill-switch's deployed bundle (Lambda's /var/task is read-only: a module without
    # bytecode is compiled on every cold start)
    path = cached_bundle(name, requirements_file(name), PACKAGE_DIR)
    magic = subprocess.run(
        [str(python312()), "-c", "import importlib.util, sys; "
         "sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    # Then every module has its CPython 3.12 bytecode, hash-based and unchecked (bit 0 of the
    # flags set, bit 1 clear: valid whatever modification times the zip gives the sources), and
    # no other bytecode is shipped
    expected = {p.parent / "__pycache__" / f"{p.stem}.cpython-312.pyc" for p in path.rglob("*.py")}
    shipped = set(path.rglob("*.pyc"))
    assert expected and shipped == expected
    for pyc in shipped:
        header = pyc.read_bytes()[:8]
        assert header[:4].hex() == magic, pyc
        assert int.from_bytes(header[4:8], "little") == 0b01, pyc


def test_deployed_bundle_is_aarch64_and_its_imported_twin_has_the_same_code(
    bundle: tuple[str, Path],
) -> None:
    # Given a function's deployed bundle and the twin the import test runs
    name, path = bundle
    twin = _twin(name)

    # Then every shared object of the deployed bundle is an aarch64 ELF (arm64 functions), the
    # twin's are this machine's, and both hold exactly the same Python files
    deployed = _machines(path)
    assert deployed, f"{name}: no shared object at all (pydantic-core has one)"
    wrong = {so: m for so, m in deployed.items() if m != ELF_MACHINES[LAMBDA_PYTHON_PLATFORM]}
    assert wrong == {}, f"{name}: not aarch64: {wrong}"
    assert set(_machines(twin).values()) == {ELF_MACHINES[IMPORTABLE_PYTHON_PLATFORM]}
    assert _python_files(path) == _python_files(twin)
    # and nothing pruned is left: type stubs, C sources, wheels' test suites
    leftovers = [
        p for p in path.rglob("*")
        if p.suffix in {".pyi", ".c", ".h", ".pyx", ".pxd", ".pxi"}
        or (p.is_dir() and p.name in {"tests", "test"})
    ]  # fmt: skip
    assert leftovers == []


def test_bundle_fits_lambda_and_ships_only_its_dependencies(bundle: tuple[str, Path]) -> None:
    # Given a real bundle
    name, path = bundle
    spec = FUNCTIONS[name]

    # Then it is under the 250 MB unzipped limit, holds the package and no unneeded library
    assert directory_size_bytes(path) < LAMBDA_UNZIPPED_LIMIT_BYTES
    assert (path / "cryptosmarttrader" / "settings.py").is_file()
    if name not in BYTECODE_BUNDLES:
        assert not list(path.rglob("__pycache__"))
    for module in spec["absent"]:
        assert not (path / module).exists(), f"{module} must not be in the {name} bundle"


# The development tooling (embedded local AWS, local deployment, chaos lab, moto shims, fake
# exchange) lives in devtools/cst_devtools and must never reach a Lambda: by name, or by moto.
DEV_ONLY_MODULES = frozenset(
    {"faults.py", "chaos.py", "local_deploy.py", "local_aws.py", "moto_shims.py", "fake_binance.py"}
)
_MOTO_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:moto|cst_devtools)\b", re.MULTILINE)


def _development_tooling_in(root: Path, package: str = "cryptosmarttrader") -> list[str]:
    """The dev package, moto, a dev module, or a Lambda-side module importing moto or the dev
    package (the CLI is never Lambda code: its local commands import the dev package inside
    the command, which fails clearly where it is absent)."""
    found = [p.name for p in root.iterdir() if p.name in {"cst_devtools", "moto"}]
    for path in sorted((root / package).rglob("*.py")):
        relative = path.relative_to(root / package)
        if relative.parts[0] == "cli":
            continue
        if path.name in DEV_ONLY_MODULES or _MOTO_IMPORT.search(path.read_text("utf-8")):
            found.append(relative.as_posix())
    return found


def test_lambda_assets_hold_no_development_tooling(synthesized: Synthesized) -> None:
    # Given the code asset of every function of the synthesized stack
    manifest = json.loads((synthesized.outdir / f"{synthesized.stack.stack_name}.assets.json")
                          .read_text())  # fmt: skip
    keys = {
        props["Code"]["S3Key"].removesuffix(".zip")
        for props in (
            resource["Properties"]
            for resource in synthesized.resources_of_type("AWS::Lambda::Function").values()
        )
        if isinstance(props["Code"].get("S3Key"), str)
    }
    sources = {Path(manifest["files"][key]["source"]["path"]) for key in keys}

    # Then each is the functions folder, the runtime package only: no dev module, nothing of moto
    assert sources == {REPO_ROOT / "functions"}, sources
    assert sorted(p.name for p in (REPO_ROOT / "functions").iterdir()) == ["cryptosmarttrader"]
    assert _development_tooling_in(REPO_ROOT / "functions") == []


def test_bundle_holds_no_development_tooling(bundle: tuple[str, Path]) -> None:
    # Given a real bundle
    name, path = bundle

    # Then neither the dev package, nor moto, nor a module importing them is in it
    assert _development_tooling_in(path) == [], name


def test_bundle_imports_and_runs_on_cpython_312(
    bundle: tuple[str, Path], runtime_boto3: Path
) -> None:
    # Given a real bundle (its twin for this machine), CPython 3.12, and the runtime's boto3
    name, _ = bundle
    path = _twin(name)
    spec = FUNCTIONS[name]
    python = _python312()
    handler_module = str(spec["handler"])
    # the settings module (pydantic models) where the bundle ships pydantic; the kill-switch
    # reads its settings without it (handlers/_lean.py)
    settings = "pydantic" in spec["imports"]
    modules = [
        *spec["imports"],
        "cryptosmarttrader.settings" if settings else "cryptosmarttrader.handlers._lean",
    ]
    handler_file = f"{handler_module.rsplit('.', 1)[-1]}.py"
    handler_present = (PACKAGE_DIR / "handlers" / handler_file).is_file()
    if handler_present:
        modules.append(handler_module)
    script = (
        "import importlib, io, sys\n"
        f"sys.path[:0] = {json.dumps([str(path), str(runtime_boto3)])}\n"
        f"mods = {json.dumps(modules)}\n"
        "for m in mods: importlib.import_module(m)\n"
    )
    if "ccxt" in spec["imports"]:
        # the synchronous client on requests for each venue, and secp256k1 signing through
        # cryptography: neither needs the asyncio stack or coincurve the bundle leaves out
        script += (
            "import ccxt, hashlib\n"
            "for venue in ('binance', 'kraken', 'kucoin'):\n"
            "    assert type(getattr(ccxt, venue)().session).__module__ == 'requests.sessions'\n"
            "digest = hashlib.sha256(b'order').hexdigest()\n"
            "sig = ccxt.Exchange.ecdsa(digest, '1a' * 32, 'secp256k1')\n"
            "assert len(sig['r']) == len(sig['s']) == 64, sig\n"
            "left_out = {'aiohttp', 'yarl', 'uvloop', 'coincurve', 'multidict'}\n"
            "assert not left_out & {m.split('.')[0] for m in sys.modules}, sys.modules\n"
        )
    if "polars" in spec["imports"]:
        script += (
            "import polars as pl\n"
            "buf = io.BytesIO(); pl.DataFrame({'t': [1, 2], 'c': [1.5, 2.5]}).write_parquet(buf)\n"
            "buf.seek(0); assert pl.read_parquet(buf)['c'].sum() == 4.0\n"
        )

    # -I ignores PYTHONDONTWRITEBYTECODE, and __pycache__ must never land in the bundle: a bundle
    # that ships its bytecode is imported with it, writing none (-B); the others' CPython 3.12
    # bytecode is kept beside the twin in the bundle cache (removed with it), so only the first
    # import of a bundle's content compiles its modules (the sources never change in place)
    bytecode = ["-B"] if name in BYTECODE_BUNDLES else ["-X", f"pycache_prefix={path}.bytecode"]

    # When it imports every dependency (and the handler) with the bundle first on sys.path,
    # as in Lambda (/var/task before the runtime's own packages), isolated from this venv
    result = subprocess.run(
        [str(python), "-I", *bytecode, "-c", script],
        env={
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PATH": os.environ.get("PATH", ""),
        },
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    # Then it works, including polars' stripped native runtime writing and reading Parquet
    # where the function ships polars
    assert result.returncode == 0, result.stderr
    if name not in BYTECODE_BUNDLES:
        assert not list(path.rglob("__pycache__")), f"{name}: bytecode written into the bundle"
    if not handler_present:
        pytest.skip(f"handlers/{handler_file} is not written yet; dependencies import fine")


def _assets_of_functions(synthesized: Synthesized) -> dict[str, tuple[str, str]]:
    """Each function of the synthesized template → (its handler, the requirement list whose
    bundle its code asset is): read from the constructs, checked against the template."""
    functions = [c for c in synthesized.stack.node.find_all() if isinstance(c, PythonFunction)]
    found: dict[str, tuple[str, str]] = {}
    asset_of: dict[str, str] = {}
    for function in functions:
        logical_id = synthesized.logical_id(function.function)
        props = synthesized.resources[logical_id]["Properties"]
        code = function.code
        # the asset the template deploys is the bundle of exactly this requirement list
        assert code.asset_hash == bundle_hash(requirements_file(code.function_name), PACKAGE_DIR)
        key = props["Code"]["S3Key"]
        assert asset_of.setdefault(code.asset_hash, key) == key, logical_id
        found[logical_id] = (props["Handler"], code.function_name)
    assert set(found) == set(synthesized.resources_of_type("AWS::Lambda::Function"))
    return found


def test_every_synthesized_function_asset_is_under_100_mb_or_named(
    synthesized: Synthesized,
) -> None:
    # Given every function of the synthesized stack and the bundle its code asset holds
    assets = _assets_of_functions(synthesized)
    names = sorted({name for _, name in assets.values()})
    built: dict[str, int] = {}  # identical requirement lists: one build, one measure
    sizes, paths = {}, {}
    for name in names:
        digest = bundle_hash(requirements_file(name), PACKAGE_DIR)
        paths[name] = cached_bundle(name, requirements_file(name), PACKAGE_DIR)
        if digest not in built:
            built[digest] = directory_size_bytes(paths[name])
        sizes[name] = built[digest]
    report = {name: f"{size / 2**20:.0f} MiB" for name, size in sizes.items()}

    # Then every bundle fits Lambda, and is under 100 MB unzipped unless named as not yet
    assert all(size < LAMBDA_UNZIPPED_LIMIT_BYTES for size in sizes.values()), report
    over = {name for name, size in sizes.items() if size >= FOOTPRINT_BOUND_BYTES}
    assert over == set(OVER_FOOTPRINT_BOUND) & set(sizes), report
    # and each named one is within its own measured bound, held over 100 MB by polars' native
    # runtime alone
    for name in over:
        assert sizes[name] < OVER_FOOTPRINT_BOUND[name], (name, report)
        assert directory_size_bytes(paths[name] / POLARS_RUNTIME) >= FOOTPRINT_BOUND_BYTES, name
    # And the lean functions ship neither polars nor numpy, the kill-switch the smallest bundle
    for logical_id, (handler, name) in assets.items():
        if handler in LEAN_HANDLERS:
            heavy = {
                pin
                for pin in _pins(requirements_file(name))
                if pin.startswith("polars") or pin in {"numpy", "pyarrow", "ta-lib", "xgboost"}
            }
            assert not heavy, (logical_id, name, heavy)
            shipped = [
                m for m in ("polars", "numpy", "polars_runtime") if (paths[name] / m).exists()
            ]
            assert shipped == [], (logical_id, name, shipped)
            assert sizes[name] < FOOTPRINT_BOUND_BYTES, (logical_id, report)
    # (the API, the health probe, the go-live steps and the alarm kill-switch among them)
    lean_served = {h.rsplit(".", 2)[-2] for h, _ in assets.values() if h in LEAN_HANDLERS}
    assert {"api", "health_probe", "golive_steps", "alarm_killswitch"} <= lean_served
    # (the kill-switch's also ships its bytecode, a start-up speed trade: compared without it)
    (killswitch,) = [n for h, n in assets.values() if h.endswith("alarm_killswitch.handler")]
    bytecode = sum(p.stat().st_size for p in paths[killswitch].rglob("*.pyc"))
    assert bytecode > 0, "the kill-switch's bundle ships its bytecode"
    lean = sizes[killswitch] - bytecode
    assert all(lean < size for n, size in sizes.items() if n != killswitch), (lean, report)


def test_every_synthesized_function_runs_on_arm64_with_aarch64_shared_objects(
    synthesized: Synthesized,
) -> None:
    # Given every function of the synthesized template and the bundle its code asset holds
    assets = _assets_of_functions(synthesized)

    # Then each runs on arm64 (Graviton), and every shared object it ships is an aarch64 ELF
    assert LAMBDA_ARCHITECTURE == "arm64"
    for logical_id in assets:
        props = synthesized.resources[logical_id]["Properties"]
        assert props.get("Architectures") == [LAMBDA_ARCHITECTURE], logical_id
    for name in sorted({name for _, name in assets.values()}):
        bundle = cached_bundle(name, requirements_file(name), PACKAGE_DIR)
        machines = set(_machines(bundle).values())
        assert machines == {ELF_MACHINES[LAMBDA_PYTHON_PLATFORM]}, (name, machines)


def _without_cli_metadata(template: Mapping[str, Any]) -> dict[str, Any]:
    """Drop what only the CLI adds: construct-path metadata and the CDKMetadata resource."""
    resources = {
        logical_id: {k: v for k, v in resource.items() if k != "Metadata"}
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] != "AWS::CDK::Metadata"
    }
    conditions = {
        k: v for k, v in template.get("Conditions", {}).items() if k != "CDKMetadataAvailable"
    }
    return {**template, "Resources": resources, "Conditions": conditions}


# The command line docs/infrastructure.md shows for a synth, run here exactly as written from a
# working directory that links the repository's files (so cdk.out lands in a scratch directory):
# tests/e2e/test_documented_commands.py lists that documented line as run by this test.
DOCUMENTED_SYNTH = ("npx", "--yes", "aws-cdk@2", "synth")


def scratch_checkout(root: Path) -> Path:
    """A directory holding links to the repository's files (not .git, .venv, caches, cdk.out)."""
    root.mkdir(parents=True)
    for entry in REPO_ROOT.iterdir():
        if entry.name not in {".git", ".venv", ".cst", "cdk.out"}:
            (root / entry.name).symlink_to(entry)
    return root


@pytest.mark.slow
def test_cdk_cli_synth_bundles_and_matches_the_tested_template(tmp_path: Path) -> None:
    # Given the CLI (as a user runs it: cdk.json app, bundling on) and the tested template
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed")
    from tests.infrastructure.conftest import SKIP_BUNDLING, synthesized_template

    def source_digests() -> dict[str, str]:
        return {name: bundle_hash(requirements_file(name), PACKAGE_DIR) for name in FUNCTIONS}

    before = source_digests()
    # the template every assertion test of this run checks (synthesized once per run)
    expected = json.loads(synthesized_template(SKIP_BUNDLING).template_path.read_text())

    # When `cdk synth` runs as docs/infrastructure.md shows it
    checkout = scratch_checkout(tmp_path / "repo")
    result = subprocess.run(
        [npx, *DOCUMENTED_SYNTH[1:]],
        cwd=checkout, capture_output=True, text=True, check=False,
        env={
            **os.environ,
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            # the app's `uv run` uses this environment as installed (the checkout has none)
            "UV_PROJECT_ENVIRONMENT": str(Path(sys.executable).parent.parent),
            "UV_NO_SYNC": "1",
        },
    )  # fmt: skip
    assert not (checkout / ".venv").exists(), "the synth created an environment of its own"
    out = checkout / "cdk.out"

    # Then it succeeds (cdk-nag included), bundles real code, and the template is the same one
    # the assertion tests check
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if source_digests() != before:
        pytest.skip("functions/ changed while the test ran (concurrent edit): asset hashes moved")
    template = json.loads((out / "CryptoSmartTrader.template.json").read_text())
    assert _without_cli_metadata(template) == _without_cli_metadata(expected)
    handlers = {f"{spec['handler']}.handler": name for name, spec in FUNCTIONS.items()}
    assets = {
        handlers[r["Properties"]["Handler"]]: out
        / ("asset." + r["Properties"]["Code"]["S3Key"].removesuffix(".zip"))
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] in handlers
    }
    assert set(assets) == set(FUNCTIONS)
    for name, asset in assets.items():
        assert (asset / "cryptosmarttrader" / "settings.py").is_file()
        assert (asset / "polars").is_dir() == ("polars" in FUNCTIONS[name]["imports"])
        assert (asset / "ccxt").is_dir() == ("ccxt" in FUNCTIONS[name]["imports"])

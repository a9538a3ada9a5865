"""Lambda code assets built without Docker: pinned wheels for the Lambda platform + our package.

Each function has its own pinned requirement list (``infra/lambda_requirements/<name>.txt``), so
a function ships only what it imports. Every pin carries the SHA-256 of its distributions and the
install runs with ``--require-hashes``: a list without hashes is refused before anything is
fetched, and a wheel whose bytes differ from its pinned hash fails the build. ``uv pip install``
fetches manylinux aarch64 wheels (arm64 / Graviton functions) for CPython 3.12 (the Lambda
runtime, on Amazon Linux 2023, glibc 2.34) whatever the build machine runs; ``--only-binary``
refuses source builds, which could compile for the wrong platform. Shared objects are stripped of
symbol tables (polars' aarch64 runtime shrinks from 167 MB to 121 MB) by a ``strip`` that reads
the target's ELF machine, files no function reads at run time are pruned (type stubs, C and
Cython sources, C headers, wheels' own test suites, ccxt's unused asyncio and websocket
clients), and a bundle over Lambda's 250 MB unzipped limit fails the synth instead of the
deployment.

The build machine cannot execute aarch64 code, so the tests import a *twin* of each bundle built
for the build machine's own architecture from the same pinned requirement list by the same
steps (:data:`IMPORTABLE_PYTHON_PLATFORM`); they check that the twin holds the same Python files
as the deployed bundle and that every shared object of the deployed bundle is an aarch64 ELF.

The kill-switch's bundle (:data:`BYTECODE_BUNDLES`) also ships its modules' bytecode, compiled
by a CPython 3.12 (the runtime's; bytecode is the same on every architecture) as
``unchecked-hash`` ``.pyc`` files: Lambda's ``/var/task`` is read-only, so a bundle without
``__pycache__`` compiles every module it imports on every cold start (0.39 s against 0.28 s of
CPU for the kill-switch's import, ``bench/bench_cold_import.py --bundles``), and hash-based
bytecode stays valid whatever modification times the zip gives the sources. Other bundles ship
sources only (ccxt's would grow by tens of MB). A machine without CPython 3.12
(``$CST_PYTHON312``, pyenv's, or ``python3.12`` on ``PATH``) still builds and deploys the
kill-switch, without its bytecode and with a warning: its cold starts then compile.

The asset hash is a digest of the requirement list, the package source and the target platform.
CDK reuses ``cdk.out/asset.<hash>`` when it exists, and finished bundles are also kept in
``.cst/lambda-bundles/`` (git-ignored), so only a real change rebuilds; an asset's files are hard
links to the kept bundle's where the file system allows (a synth then writes no copy of them).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR: Final = REPO_ROOT / "functions"
PACKAGE_NAME: Final = "cryptosmarttrader"
REQUIREMENTS_DIR: Final = REPO_ROOT / "infra" / "lambda_requirements"
CACHE_DIR: Final = REPO_ROOT / ".cst" / "lambda-bundles"
COMPILE_COMMAND: Final = "uv run python infra/lambda_requirements/compile.py"

LAMBDA_PYTHON_VERSION: Final = "3.12"
LAMBDA_ARCHITECTURE: Final = "arm64"  # the template's Architectures (Graviton)
LAMBDA_PYTHON_PLATFORM: Final = "aarch64-manylinux_2_34"
LAMBDA_UNZIPPED_LIMIT_BYTES: Final = 250 * 1024 * 1024
# Bump when the bundle layout or the install command changes, so stale bundles are not reused.
BUNDLE_FORMAT: Final = "6"
# Bundles that ship their bytecode (see the module docstring): the function that stops trading.
BYTECODE_BUNDLES: Final = frozenset({"killswitch"})

# ELF e_machine of each platform's shared objects (what the loader refuses when it differs)
ELF_MACHINES: Final = {"aarch64-manylinux_2_34": 183, "x86_64-manylinux_2_34": 62}
# The build machine's own platform: the twin bundle the tests import (see the module docstring)
IMPORTABLE_PYTHON_PLATFORM: Final = (
    "aarch64-manylinux_2_34"
    if platform.machine().lower() in {"aarch64", "arm64"}
    else "x86_64-manylinux_2_34"
)
# Never read at run time: type stubs, C/C++/Cython sources and headers.
_PRUNED_SUFFIXES: Final = (".pyi", ".c", ".h", ".cpp", ".hpp", ".pxd", ".pxi", ".pyx")
# Wheels' own test suites, and ccxt's asyncio and websocket clients (the functions use the
# synchronous client; ``import ccxt`` never loads them).
_PRUNED_DIR_NAMES: Final = frozenset({"tests", "test"})
_PRUNED_PATHS: Final = ("ccxt/async_support", "ccxt/pro", "numpy/_core/include")

_IGNORED_DIRS: Final = frozenset({"__pycache__"})
_IGNORED_SUFFIXES: Final = (".pyc", ".pyo")


class BundlingError(RuntimeError):
    """The dependencies or the package could not be assembled into a Lambda bundle."""


def requirements_file(function_name: str) -> Path:
    path = REQUIREMENTS_DIR / f"{function_name}.txt"
    if not path.is_file():
        raise BundlingError(f"no pinned requirements for {function_name!r}: {path}")
    return path


def requirement_entries(requirements: Path) -> list[str]:
    """Each requirement of a pip requirements file, continuation lines joined, comments dropped."""
    entries: list[str] = []
    current: list[str] = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        continued = line.endswith("\\")
        if line.rstrip("\\").strip():
            current.append(line.rstrip("\\").strip())
        if not continued and current:
            entries.append(" ".join(current))
            current = []
    if current:
        entries.append(" ".join(current))
    return entries


def check_hashed(requirements: Path) -> None:
    """Refuse a requirements file with a requirement that is not ``name==version`` with at
    least one ``--hash=sha256:`` (what ``--require-hashes`` installs)."""
    entries = requirement_entries(requirements)
    if not entries:
        raise BundlingError(f"{requirements.name} lists no requirement")
    unhashed = [
        entry.split()[0]
        for entry in entries
        if "==" not in entry.split()[0] or "--hash=sha256:" not in entry
    ]
    if unhashed:
        raise BundlingError(
            f"{requirements.name}: {', '.join(unhashed)} not pinned with a --hash: regenerate "
            f"it with `{COMPILE_COMMAND}` (bundles install with --require-hashes)"
        )


def _source_files(package_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in package_dir.rglob("*")
        if path.is_file()
        and not _IGNORED_DIRS.intersection(path.relative_to(package_dir).parts)
        and not path.name.endswith(_IGNORED_SUFFIXES)
    )


def bundle_hash(
    requirements: Path, package_dir: Path, python_platform: str = LAMBDA_PYTHON_PLATFORM
) -> str:
    """Digest of everything that decides a bundle's content."""
    digest = hashlib.sha256()
    for part in (BUNDLE_FORMAT, LAMBDA_PYTHON_VERSION, python_platform):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(requirements.read_bytes())
    for path in _source_files(package_dir):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _uv_executable() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise BundlingError("uv is not on PATH; run `pip install uv` then `uv sync`")
    return uv


def install_command(
    requirements: Path, target: Path, python_platform: str = LAMBDA_PYTHON_PLATFORM
) -> list[str]:
    """Exactly the pinned set (``--no-deps``): the ``.txt`` is a complete resolution."""
    return [
        _uv_executable(),
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--link-mode",
        "copy",  # the bundle is stripped in place; never touch uv's cache through hardlinks
        "--only-binary",
        ":all:",
        "--require-hashes",  # every wheel must match a pinned SHA-256
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--python-platform",
        python_platform,
        "--target",
        str(target),
        "--requirement",
        str(requirements),
    ]


def _copy_package(package_dir: Path, target: Path) -> None:
    shutil.copytree(
        package_dir,
        target / package_dir.name,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
    )


def python312() -> Path:
    """A CPython 3.12 (the Lambda runtime's version): ``$CST_PYTHON312``, pyenv's, or
    ``python3.12`` on ``PATH``."""
    candidates = [os.environ.get("CST_PYTHON312", "")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))]
    candidates += [shutil.which("python3.12") or ""]
    for candidate in filter(None, candidates):
        probe = subprocess.run(  # noqa: S603 - a fixed probe of a candidate interpreter
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.stdout.strip() == "True":
            return Path(candidate)
    raise BundlingError("CPython 3.12 not found (set CST_PYTHON312): it compiles the bytecode")


def compile_bytecode(root: Path) -> None:
    """Every module of ``root`` compiled by CPython 3.12 into ``__pycache__`` as
    ``unchecked-hash`` bytecode (valid without comparing modification times)."""
    subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(python312()), "-I", "-m", "compileall", "-q", "--invalidation-mode",
         "unchecked-hash", str(root)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def _stripper(python_platform: str) -> str:
    """A ``strip`` that reads the target's ELF machine: the target's binutils, LLVM's
    (multi-target), or the build machine's own when the target is its architecture."""
    arch = python_platform.split("-", 1)[0]
    candidates = [f"{arch}-linux-gnu-strip", "llvm-strip"]
    if python_platform == IMPORTABLE_PYTHON_PLATFORM:
        candidates.append("strip")
    for candidate in candidates:
        found = shutil.which(candidate)
        if found is not None:
            return found
    raise BundlingError(
        f"no strip for {arch} shared objects: install binutils-{arch.replace('_', '-')}-linux-gnu "
        "or llvm (apt-get install binutils-aarch64-linux-gnu)"
    )


def strip_shared_objects(root: Path, python_platform: str = LAMBDA_PYTHON_PLATFORM) -> None:
    """Drop symbol tables from ``*.so`` files (the dynamic symbols Python loads stay). Only ELF
    files: a name such as ``index.some-name.parquet`` matches ``*.so*`` too."""
    libraries = sorted(
        str(p)
        for p in root.rglob("*.so*")
        if p.is_file() and not p.is_symlink() and elf_machine(p) is not None
    )
    if libraries:
        strip = _stripper(python_platform)
        subprocess.run([strip, "--strip-unneeded", *libraries], check=True)  # noqa: S603


def prune(root: Path) -> None:
    """Delete what no function reads at run time (see ``_PRUNED_*``) from installed wheels."""
    for relative in _PRUNED_PATHS:
        shutil.rmtree(root / relative, ignore_errors=True)
    for path in sorted(root.rglob("*"), reverse=True):  # deepest first
        if path.is_dir() and path.name in _PRUNED_DIR_NAMES:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.endswith(_PRUNED_SUFFIXES):
            path.unlink()


def elf_machine(path: Path) -> int | None:
    """The ELF ``e_machine`` of ``path`` (183 aarch64, 62 x86-64), None if not an ELF file."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    if header[5] == 1:  # EI_DATA: little-endian
        return int.from_bytes(header[18:20], "little")
    return int.from_bytes(header[18:20], "big")


def build_bundle(
    requirements: Path,
    package_dir: Path,
    destination: Path,
    python_platform: str = LAMBDA_PYTHON_PLATFORM,
    *,
    bytecode: bool = False,
) -> None:
    """Install the wheels, strip and prune them, and copy the package into an empty
    ``destination``; with ``bytecode``, compile every module too."""
    check_hashed(requirements)
    try:
        subprocess.run(  # noqa: S603 - fixed argument list, no shell
            install_command(requirements, destination, python_platform),
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
        )
    except subprocess.CalledProcessError as error:
        raise BundlingError(
            f"installing {requirements.name} for the Lambda platform failed:\n{error.stderr}"
        ) from error
    shutil.rmtree(destination / "bin", ignore_errors=True)  # console scripts, unused in Lambda
    strip_shared_objects(destination, python_platform)
    prune(destination)
    _copy_package(package_dir, destination)
    if bytecode:
        try:
            compile_bytecode(destination)
        except BundlingError as missing:  # no CPython 3.12 on this machine: deployable, slower
            warnings.warn(
                f"{requirements.stem} bundle ships without bytecode ({missing}): its cold "
                "start compiles every module; install CPython 3.12 for the measured start-up",
                stacklevel=2,
            )
    size = directory_size_bytes(destination)
    if size > LAMBDA_UNZIPPED_LIMIT_BYTES:
        raise BundlingError(
            f"{requirements.stem} bundle is {size / 2**20:.0f} MiB unzipped, over Lambda's "
            f"{LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB limit: trim {requirements.name}"
        )


def cached_bundle(
    function_name: str,
    requirements: Path,
    package_dir: Path,
    python_platform: str = LAMBDA_PYTHON_PLATFORM,
) -> Path:
    """The finished bundle for this content and platform, built once into the cache
    (``.cst/lambda-bundles/<arch>/<function>-<hash>``, atomic rename)."""
    key = bundle_hash(requirements, package_dir, python_platform)
    cache = CACHE_DIR / python_platform.split("-", 1)[0]
    cached = cache / f"{function_name}-{key[:16]}"
    if cached.is_dir():
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{function_name}-", dir=cache))
    try:
        build_bundle(
            requirements,
            package_dir,
            staging,
            python_platform,
            bytecode=function_name in BYTECODE_BUNDLES,
        )
        try:
            staging.rename(cached)
        except OSError:
            if not cached.is_dir():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for stale in cache.glob(f"{function_name}-*"):  # ~200 MB each: keep only the current one
        if stale != cached and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return cached


def directory_size_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


@jsii.implements(ILocalBundling)
class UvLocalBundling:
    """CDK local bundler: copies the cached bundle into the asset output directory."""

    def __init__(self, function_name: str, requirements: Path, package_dir: Path) -> None:
        self._function_name = function_name
        self._requirements = requirements
        self._package_dir = package_dir

    def try_bundle(self, output_dir: str, *_options: object, **_kwargs: object) -> bool:
        bundle = cached_bundle(self._function_name, self._requirements, self._package_dir)
        shutil.copytree(
            bundle, output_dir, dirs_exist_ok=True, symlinks=True, copy_function=_link_or_copy
        )
        return True


def _link_or_copy(source: str, target: str) -> str:
    """A hard link to the kept bundle's file (a finished bundle is never written again, and CDK
    only reads and zips its assets): up to ~1 GB less to copy on every synth; a copy where no
    link can be made (another file system). A file already at ``target`` is replaced, never
    written through (it may itself be a link to the kept bundle)."""
    kept, asset = Path(source), Path(target)
    if asset.is_symlink() or asset.exists():
        if asset.exists() and asset.samefile(kept):
            return target
        asset.unlink()
    try:
        asset.hardlink_to(kept)
    except OSError:
        shutil.copy2(source, target)
    return target


@dataclass(frozen=True)
class LambdaCode:
    """One function's code asset and the facts about it the tests and docs rely on."""

    function_name: str
    requirements: Path
    asset_hash: str
    code: lambda_.Code


def python_lambda_code(
    function_name: str, *, package_dir: Path = FUNCTIONS_DIR / PACKAGE_NAME
) -> LambdaCode:
    """``Code`` for ``function_name`` whose bundle holds its pinned wheels and ``package_dir``."""
    requirements = requirements_file(function_name)
    asset_hash = bundle_hash(requirements, package_dir)
    code = lambda_.Code.from_asset(
        str(package_dir.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash,
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(
            # Never pulled: the local bundler always succeeds or raises. CDK requires an image.
            image=DockerImage.from_registry("unused-local-bundling-only"),
            local=UvLocalBundling(function_name, requirements, package_dir),
        ),
    )
    return LambdaCode(function_name, requirements, asset_hash, code)

"""Pin each Lambda's requirements (``*.in`` → ``*.txt``) to the versions in ``uv.lock``, with hashes.

The lock is exported as a constraints file, so every pin in a ``*.txt`` equals the version the
test suite runs against; the resolution targets the Lambda platform (CPython 3.12, manylinux
aarch64), not this machine. Every pin carries the SHA-256 of each of its distributions
(``--generate-hashes``), and bundling installs with ``--require-hashes``: a wheel whose bytes
differ from the ones pinned here (a compromised index, a swapped file) fails the build. Run from
the repository root::

    uv run python infra/lambda_requirements/compile.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PYTHON_VERSION = "3.12"
# arm64 (Graviton) functions; python3.12 runs on Amazon Linux 2023 (glibc 2.34)
PYTHON_PLATFORM = "aarch64-manylinux_2_34"
# In the python3.12 runtime already; shipping them would only add ~30 MB of botocore.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six")
# Dependencies a function's wheels declare but its code never imports, left out of that
# function's list. ccxt requires its asyncio client's stack (aiohttp and what aiohttp needs,
# uvloop) and coincurve, but the ingest and the execution use ccxt's synchronous client
# (``import ccxt`` loads requests, not aiohttp; bundles prune ``ccxt/async_support`` and
# ``ccxt/pro``), and ccxt signs secp256k1 with cryptography where coincurve is absent
# (``Exchange.ecdsa``); none of the venues (Binance, Kraken, KuCoin) signs with secp256k1.
# 7.6 MiB of each of those bundles (aarch64, stripped); ``tests/infrastructure/test_bundling.py``
# imports the bundles and signs with ccxt without them.
_CCXT_UNUSED: tuple[str, ...] = (
    "aiohttp",
    "aiohttp-fast-zlib",
    "zlib-ng",
    "aiohappyeyeballs",
    "aiosignal",
    "attrs",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
    "uvloop",
    "coincurve",
)
NOT_SHIPPED: dict[str, tuple[str, ...]] = {"ingest": _CCXT_UNUSED, "execute": _CCXT_UNUSED}
COMPILE_COMMAND = "uv run python infra/lambda_requirements/compile.py"


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not on PATH")
    return uv


def compile_all() -> list[Path]:
    uv = _uv()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [
                uv,
                "export",
                "--frozen",
                "--no-hashes",
                "--no-dev",
                "--no-emit-project",
                "--format",
                "requirements-txt",
                "--output-file",
                str(constraints),
            ],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
        for source in sorted(HERE.glob("*.in")):
            target = source.with_suffix(".txt")
            subprocess.run(  # noqa: S603 - fixed argument list, no shell
                [
                    uv,
                    "pip",
                    "compile",
                    str(source),
                    "--constraints",
                    str(constraints),
                    "--python-version",
                    PYTHON_VERSION,
                    "--python-platform",
                    PYTHON_PLATFORM,
                    "--no-annotate",
                    "--generate-hashes",
                    *(
                        arg
                        for name in (*RUNTIME_PROVIDED, *NOT_SHIPPED.get(source.stem, ()))
                        for arg in ("--no-emit-package", name)
                    ),
                    "--custom-compile-command",
                    COMPILE_COMMAND,
                    "--output-file",
                    str(target),
                ],
                cwd=REPO_ROOT,
                check=True,
                capture_output=True,
            )
            written.append(target)
    return written


if __name__ == "__main__":
    for path in compile_all():
        sys.stdout.write(f"wrote {path.relative_to(REPO_ROOT)}\n")

"""The live-venue tests (the fake Binance through real ccxt) run the execution service on the
in-memory stores of ``tests/fakes.py``, not on moto: what they check is the venue logic. Only
the modules named in ``ON_MOTO`` reach AWS, for the reason given (docs/testing.md, "Which tests
use moto, and why"). Read from the sources, so nothing here starts moto."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
RIG = TESTS / "support" / "live_venue.py"
ON_MOTO = {
    "test_live_venue_keys_handler_fake_exchange.py": "the handler with its deployed env and the"
    " venue keys read from Secrets Manager",
}
# what builds or reaches AWS: moto itself, the moto stacks of the tests, the AWS clients and the
# store and kill-switch adapters (their pure record helpers, e.g. ``read_open_orders``, are not)
AWS_MODULES = (
    "moto",
    "boto3",
    "tests.support.aws",
    "cst_devtools.local_aws",
    "cryptosmarttrader.adapters.aws_clients",
    "cryptosmarttrader.adapters.ssm_killswitch",
)
AWS_NAMES = {"DynamoOrderStore", "DynamoPositionStore", "DynamoStateStore", "mock_aws"}


def _live_venue_modules() -> list[Path]:
    found = [
        *(TESTS / "integration").glob("test_live_venue*_fake_exchange.py"),
        TESTS / "integration" / "test_protective_list_retry_faults_fake_exchange.py",
        TESTS / "integration" / "test_golive_rollback_venue_fake_exchange.py",
    ]
    return sorted(p for p in found if p.name not in ON_MOTO)


def _aws_imports(path: Path) -> list[str]:
    """Every import of ``path`` that builds or reaches AWS, as ``module`` or ``module.name``."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            hits += [a.name for a in node.names if a.name.startswith(AWS_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(AWS_MODULES):
                hits.append(node.module)
            hits += [f"{node.module}.{a.name}" for a in node.names if a.name in AWS_NAMES]
    return hits


def test_the_live_venue_modules_are_found() -> None:
    names = {p.name for p in _live_venue_modules()}
    assert len(names) >= 15, names
    assert "test_golive_rollback_venue_fake_exchange.py" in names
    assert all((TESTS / "integration" / name).is_file() for name in ON_MOTO)


def test_the_live_venue_rig_and_modules_import_nothing_of_aws() -> None:
    found = {p.name: _aws_imports(p) for p in [RIG, *_live_venue_modules()]}
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_the_check_sees_an_aws_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "from moto import mock_aws\n"
        "from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, read_open_orders\n"
        "from tests.support.aws import moto_stack\n",
        encoding="utf-8",
    )
    assert _aws_imports(module) == [
        "moto",
        "moto.mock_aws",
        "cryptosmarttrader.adapters.dynamodb_store.DynamoOrderStore",
        "tests.support.aws",
    ]

"""`cst` starts fast: the heavy libraries are imported by the commands that use them, not by the CLI.

Checked structurally (which modules a fresh interpreter has loaded), never by timing: the
start-up time itself is measured by ``bench/bench_cli_startup.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.support.fresh_interpreter import FreshRun, run_fresh

HEAVY = (
    "numpy",
    "polars",
    "pyarrow",
    "pandas",
    "moto",
    "boto3",
    "botocore",
    "ccxt",
    "plotly",
    "xgboost",
    "sklearn",
    "scipy",
    "aws_cdk",
    "aws_lambda_powertools",
)


def _loaded_after(code: str) -> list[str]:
    return run_fresh(code, HEAVY).loaded


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import cryptosmarttrader.cli") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["killswitch", "--help"],
        ["evaluate", "--help"],
        ["backtest", "--help"],
        ["model", "train", "--help"],
        ["chaos", "run", "--help"],
        ["api", "serve", "--help"],
    ],
)
def test_help_of_a_command_loads_no_heavy_library(argv: list[str]) -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from cryptosmarttrader.cli import app\n"
        f"result = CliRunner().invoke(app, {argv!r})\n"
        "assert result.exit_code == 0, result.output\n"
    )
    assert _loaded_after(code) == []


def test_the_cli_lists_the_chaos_scenarios_of_the_service() -> None:
    from cryptosmarttrader.cli import chaos as cli_chaos
    from cst_devtools import chaos as service_chaos

    assert cli_chaos.SCENARIOS == service_chaos.SCENARIOS


def test_kill_switch_commands_start_without_loading_the_local_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cryptosmarttrader.cli import app
    from cst_devtools.local_aws import embedded_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # Given a local state whose lake mirror holds an object
    lake_file = tmp_path / "lake" / "exchange=binance" / "part.parquet"
    lake_file.parent.mkdir(parents=True)
    lake_file.write_bytes(b"PAR1 recorded bytes")

    # When the kill-switch is turned on (it never touches S3)
    result = CliRunner().invoke(
        app, ["killswitch", "on", "--reason", "drill", "--state-dir", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output

    # Then the switch is stored and the lake mirror is left exactly as it was
    assert json.loads(result.stdout)["kill_switch"]["on"] is True
    assert lake_file.read_bytes() == b"PAR1 recorded bytes"
    with embedded_aws(tmp_path, lake=False) as aws:
        assert aws.loaded["lake_objects"] == 0
        listed = aws.s3.list_objects_v2(Bucket=aws.resources.lake_bucket)
        assert listed.get("KeyCount", 0) == 0
    assert lake_file.exists()
    with embedded_aws(tmp_path) as aws:  # the default still loads it
        assert aws.loaded["lake_objects"] == 1


def test_a_local_command_parses_the_ec2_model_once_for_moto_s_region_table() -> None:
    # Given a fresh interpreter that counts botocore's parses of the EC2 service model
    probe = """
import botocore.loaders as loaders
parses = []
load_file = loaders.JSONFileLoader.load_file
def counting(self, path):
    if path.endswith("ec2/2016-11-15/service-2"):
        parses.append(path)
    return load_file(self, path)
loaders.JSONFileLoader.load_file = counting
from cst_devtools.local_aws import import_moto_regions_once
import_moto_regions_once()
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend as table
import boto3
fresh = {p: boto3.Session().get_available_regions("ec2", partition_name=p)
         for p in ("aws", "aws-us-gov", "aws-cn")}
answer = {"parses": len(parses) - 3, "regions": [r.name for r in table.regions], "fresh": fresh}
"""
    # When moto's EC2 region table (imported by its SSM backend) is imported the local way
    out = run_fresh(probe, ()).answer
    # Then the model was parsed once (the three fresh sessions of the check parse it three more
    # times), and the table holds every region a fresh session names, in every partition
    assert out["parses"] == 1
    named = {r for regions in out["fresh"].values() for r in regions}
    assert named and named <= set(out["regions"])


def test_moto_s_ssm_backend_still_reaches_the_real_ec2_backends() -> None:
    # Given moto's SSM module imported the local way (moto.ec2 deferred)
    code = (
        "import sys\n"
        "from cst_devtools.local_aws import import_moto_ssm_without_ec2\n"
        "import_moto_ssm_without_ec2()\n"
        "deferred = 'moto.ec2' not in sys.modules\n"
        "import moto.ssm.models as ssm\n"
        "from moto.core.models import DEFAULT_ACCOUNT_ID\n"
        "backend = ssm.ec2_backends[DEFAULT_ACCOUNT_ID]['us-east-1']\n"
        "import moto.ec2\n"
        "answer = [deferred, type(backend).__name__,\n"
        "          backend is moto.ec2.ec2_backends[DEFAULT_ACCOUNT_ID]['us-east-1']]\n"
    )
    # When its EC2 lookup (maintenance-window targets) is used, then it is the real backend
    assert run_fresh(code, ()).answer == [True, "EC2Backend", True]


@pytest.mark.parametrize(
    "argv",
    [
        ["model", "list", "--json"],
        ["model", "list", "--group", "cst-rank"],
        ["model", "promote", "1", "--reason", "x"],
        ["model", "rollback", "--reason", "x"],
    ],
)
def test_a_registry_command_on_the_local_aws_loads_no_data_library(
    argv: list[str], tmp_path: Path
) -> None:
    # Given a fresh interpreter running a model-registry command on the embedded local AWS
    code = (
        "import os\n"
        f"os.environ['CST_STATE_DIR'] = {str(tmp_path)!r}\n"
        "os.environ.pop('AWS_ENDPOINT_URL', None)\n"
        "os.environ.pop('CST_MODEL_REGISTRY', None)\n"
        "from typer.testing import CliRunner\n"
        "from cryptosmarttrader.cli import app\n"
        f"result = CliRunner().invoke(app, {argv!r})\n"
        "answer = [result.exit_code, type(result.exception).__name__, result.output[-300:]]\n"
    )
    # When it has run (an empty registry: listed, or refused with the reason)
    run = run_fresh(code, ("numpy", "polars", "xgboost", "cryptosmarttrader.wiring"))
    # Then it answered or refused on its own terms (a crash, e.g. a name or an import a lazy
    # import left out, is an exception other than the exit), never loading the feature, drift
    # or scan modules' libraries
    assert run.answer[1] in {"NoneType", "SystemExit"}, run.answer
    assert run.answer[0] in {0, 1, 2}, run.answer
    assert run.loaded == []


_COUNT_PARSES = """
import botocore.loaders as loaders
parses = {}
load_file = loaders.JSONFileLoader.load_file
def counting(self, path):
    found = load_file(self, path)
    if found is not None:
        name = path.split("/data/")[-1].split("site-packages/")[-1]
        parses[name] = parses.get(name, 0) + 1
    return found
loaders.JSONFileLoader.load_file = counting
"""


@pytest.fixture(scope="module")
def killswitch_on_fresh(tmp_path_factory: pytest.TempPathFactory) -> FreshRun:
    """A fresh interpreter that ran `cst killswitch on` on the embedded local AWS, counting
    botocore's parses of each model file (``answer``) and watching the CLI's group modules."""
    from cryptosmarttrader.cli import GROUPS

    state = tmp_path_factory.mktemp("killswitch-state")
    code = _COUNT_PARSES + (
        "import os\n"
        f"os.environ['CST_STATE_DIR'] = {str(state)!r}\n"
        "os.environ.pop('AWS_ENDPOINT_URL', None)\n"
        "from typer.testing import CliRunner\n"
        "from cryptosmarttrader.cli import app\n"
        "result = CliRunner().invoke(app, ['killswitch', 'on', '--reason', 'drill'])\n"
        "assert result.exit_code == 0, result.output\n"
        "answer = parses\n"
    )
    watched = [
        "moto.ssm.models",
        "moto.ec2",
        *(f"cryptosmarttrader.cli.{g.module}" for g in GROUPS),
    ]
    return run_fresh(code, watched)


def test_a_local_command_parses_each_botocore_model_once_per_kind_of_loader(
    killswitch_on_fresh: FreshRun,
) -> None:
    # Given a local command that has run on the embedded AWS (DynamoDB, S3 and SSM clients)
    parses = killswitch_on_fresh.answer
    # Then the endpoint table was parsed once, and each service's model once for the clients
    # (and moto's region table) and once more for moto's own, extra-laden copy: not once more
    # for each session and each model moto asks for
    assert parses["endpoints"] == 1, parses
    for model in ("dynamodb/2012-08-10/service-2", "ssm/2014-11-06/service-2"):
        assert parses[model] == 2, (model, parses)


def test_a_local_command_does_not_import_moto_s_ec2_backend(killswitch_on_fresh: FreshRun) -> None:
    # Given a fresh interpreter that ran a local command (the kill-switch goes through SSM),
    # then moto's SSM backend served it without moto.ec2 being imported
    moto = [m for m in killswitch_on_fresh.loaded if m.startswith("moto.")]
    assert moto == ["moto.ssm.models"]


def test_a_command_imports_the_cli_module_of_its_own_group_only(
    killswitch_on_fresh: FreshRun,
) -> None:
    # Given `cst killswitch on` run in a fresh interpreter, then the kill-switch's commands were
    # imported and no other group's
    cli = [m for m in killswitch_on_fresh.loaded if m.startswith("cryptosmarttrader.cli.")]
    assert cli == ["cryptosmarttrader.cli.killswitch"]


def test_moto_and_the_clients_keep_their_own_models_and_moto_s_regions_when_sharing() -> None:
    # Given moto's backends made the local way (one loader for the clients and moto's regions)
    code = (
        "import boto3\n"
        "from moto import mock_aws\n"
        "from moto.core import utils\n"
        "from moto.core.base_backend import AccountSpecificBackend\n"
        "from cst_devtools.local_aws import share_botocore_models\n"
        "with mock_aws():\n"
        "    share_botocore_models()\n"
        "    share_botocore_models()\n"
        "    s3 = boto3.client('s3', region_name='us-east-1', aws_access_key_id='x',\n"
        "                      aws_secret_access_key='x')\n"
        "    s3.create_bucket(Bucket='cst-bucket')\n"
        "    moto_ops = set(utils.get_service_model('s3').operation_names)\n"
        "    client_ops = set(s3.meta.service_model.operation_names)\n"
        "    session = AccountSpecificBackend.get_session()\n"
        "    shared = session is boto3.DEFAULT_SESSION\n"
        "    regions = {p: sorted(session.get_available_regions('ssm', partition_name=p))\n"
        "               for p in session.get_available_partitions()}\n"
        "    fresh = boto3.Session()\n"
        "    expected = {p: sorted(fresh.get_available_regions('ssm', partition_name=p))\n"
        "                for p in fresh.get_available_partitions()}\n"
        "    boto3.DEFAULT_SESSION = None  # as mock_aws() leaves it when it starts\n"
        "    made = AccountSpecificBackend.get_session()\n"
        "    answer = [\n"
        "        made is not None and made is boto3.DEFAULT_SESSION,\n"
        "        'BucketCORSPreflightCheck' in moto_ops,\n"
        "        'BucketCORSPreflightCheck' in client_ops,\n"
        "        shared,\n"
        "        regions == expected and len(regions['aws']) > 10,\n"
        "        s3.list_buckets()['Buckets'][0]['Name'],\n"
        "    ]\n"
    )
    # When moto answers S3 and is asked for a service's regions (with or without a default
    # session), then moto's model still has moto's extras and the client's has none, and the
    # regions are a fresh session's
    assert run_fresh(code, ()).answer == [True, True, False, True, True, "cst-bucket"]


def _eager_app() -> typer.Typer:
    """`cst` as it would be with every group's module imported and added up front."""
    from cryptosmarttrader import cli

    eager = typer.Typer(
        name="cst",
        help=cli.app.info.help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for command in cli.app.registered_commands:
        eager.registered_commands.append(command)
    for group in cli.GROUPS:
        eager.add_typer(cli.group_app(group), name=group.name, help=group.help)
    return eager


def _all_help(app: typer.Typer) -> dict[str, tuple[int, str]]:
    from typer.testing import CliRunner

    env = {"COLUMNS": "300", "NO_COLOR": "1"}
    root = typer.main.get_command(app)
    out: dict[str, tuple[int, str]] = {}

    def walk(path: list[str], command: Any) -> None:
        done = CliRunner().invoke(app, [*path, "--help"], env=env)
        out[" ".join(path)] = (done.exit_code, done.output)
        if hasattr(command, "list_commands"):
            for name in command.list_commands(None):
                walk([*path, name], command.get_command(None, name))

    walk([], root)
    for argv in ([], ["golve"], ["model"], ["nope", "x"]):
        done = CliRunner().invoke(app, argv, env=env)
        out[f"<{' '.join(argv)}>"] = (done.exit_code, done.output)
    return out


def test_the_lazily_built_groups_are_the_groups_an_eager_cli_has() -> None:
    from cryptosmarttrader.cli import app

    # Given `cst` (groups built when asked) and the same CLI with every group added up front
    lazy, eager = _all_help(app), _all_help(_eager_app())
    # When every command's help, no command, a typo and an unknown command are asked for,
    # then both answer the same, for every group and command of every group
    assert len(lazy) >= 45, sorted(lazy)
    assert lazy == eager


@pytest.mark.parametrize("error", [KeyError("CST_REGION"), ImportError("no module named x")])
def test_an_error_raised_while_a_group_is_imported_is_shown_not_taken_for_an_unknown_command(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cryptosmarttrader import cli

    # Given a group whose module raises while it is imported (a missing setting read at import)
    def failing(group: cli.Group) -> typer.Typer:
        raise error

    monkeypatch.setattr(cli, "group_app", failing)
    # When one of its commands is run
    result = CliRunner().invoke(cli.app, ["golive", "status"])
    # Then the import's own error comes out, not a usage error calling the group unknown
    assert "No such command" not in result.output, result.output
    assert result.exception is error

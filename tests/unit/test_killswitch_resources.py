"""The alarm → kill-switch Lambda reads its four settings as ``AwsResources`` reads them.

It does not import the settings module (its pydantic models are most of a cold start), so its
own reader (``handlers/_lean.KillSwitchResources``) is compared with ``AwsResources`` field for
field, under the same environments: same values, and an invalid value refused by both."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cryptosmarttrader.handlers._lean import KillSwitchResources
from cryptosmarttrader.settings import AwsResources

FIELDS = ("state_table", "kill_switch_param", "region", "aws_endpoint_url")
VARIABLES = ("CST_STATE_TABLE", "CST_KILL_SWITCH_PARAM", "AWS_REGION", "AWS_ENDPOINT_URL")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"CST_STATE_TABLE": "prod-state", "CST_KILL_SWITCH_PARAM": "/cst/prod/kill-switch"},
        {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://localhost:5000"},
        {"cst_state_table": "lower-case-name"},
    ],
)
def test_the_kill_switch_reads_its_settings_as_aws_resources_does(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    lean, full = KillSwitchResources.from_environment(), AwsResources()

    assert {f: getattr(lean, f) for f in FIELDS} == {f: getattr(full, f) for f in FIELDS}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CST_STATE_TABLE", "ab"), ("CST_KILL_SWITCH_PARAM", "no-leading-slash"),
     ("CST_KILL_SWITCH_PARAM", "/cst/kill switch")],
)  # fmt: skip
def test_an_invalid_setting_is_refused_by_both(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError):
        AwsResources()
    with pytest.raises(ValidationError):
        KillSwitchResources.from_environment()

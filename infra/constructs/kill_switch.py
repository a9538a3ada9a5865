"""The kill-switch: one SSM String parameter every trading path reads before acting."""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import aws_ssm as ssm
from constructs import Construct

KILL_SWITCH_PARAMETER_NAME: Final = "/cst/kill-switch"
# Fixed, so CloudFormation never sees a changed value and never rewrites the operator's setting.
INITIAL_KILL_SWITCH_VALUE: Final = {
    "on": False,
    "reason": "initial deployment",
    "actor": "cdk",
    "at": "1970-01-01T00:00:00Z",
}


class KillSwitch(Construct):
    """``/cst/kill-switch`` holding ``{"on", "reason", "actor", "at"}`` as JSON.

    CloudFormation writes the value only when this resource's properties change. Operators and
    the kill-switch Lambda flip it with ``PutParameter``; keep this construct's properties
    unchanged, or a deployment would reset the switch to the initial value.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=KILL_SWITCH_PARAMETER_NAME,
            string_value=json.dumps(INITIAL_KILL_SWITCH_VALUE),
            description="CryptoSmartTrader kill-switch: when on, no new order is placed.",
            tier=ssm.ParameterTier.STANDARD,
        )

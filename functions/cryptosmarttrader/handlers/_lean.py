"""What the leanest Lambda (alarm → kill-switch) needs of the handlers' shared runtime, without
``pydantic.BaseModel`` or the settings module: the uniform "rejected event" result and the four
resource settings it uses, read from the environment as :class:`~cryptosmarttrader.settings.
AwsResources` reads them (same names, defaults and rules; a test keeps the two equal).

Why not ``AwsResources`` itself: importing ``pydantic.BaseModel`` and building the settings
models costs ~0.5x ``import boto3`` of a cold start, a third of the kill-switch's whole 1.5x
budget (``bench/bench_cold_import.py``). The values are still validated by pydantic's validator
core (``pydantic_core``), so an invalid setting fails the same way, with the same message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

__all__ = ["KillSwitchResources", "rejected"]

# AwsResources' fields the kill-switch uses: name → (environment variable, schema, default)
_FIELDS: dict[str, tuple[str, cs.CoreSchema, str | None]] = {
    "state_table": ("CST_STATE_TABLE", cs.str_schema(min_length=3), "cst-state"),
    "kill_switch_param": (
        "CST_KILL_SWITCH_PARAM",
        cs.str_schema(pattern=r"^/[A-Za-z0-9_./-]+$"),
        "/cst/kill-switch",
    ),
    "region": ("AWS_REGION", cs.str_schema(), "us-east-1"),
    "aws_endpoint_url": ("AWS_ENDPOINT_URL", cs.nullable_schema(cs.str_schema()), None),
}
_VALIDATOR: Any = SchemaValidator(
    cs.typed_dict_schema(
        {
            name: cs.typed_dict_field(
                cs.with_default_schema(schema, default=default), required=False
            )
            for name, (_, schema, default) in _FIELDS.items()
        },
        cls_name="AwsResources",
    )
)


@dataclass(frozen=True)
class KillSwitchResources:
    """The state table (audit trail), the kill-switch parameter and where AWS is."""

    state_table: str
    kill_switch_param: str
    region: str
    aws_endpoint_url: str | None

    @classmethod
    def from_environment(cls) -> KillSwitchResources:
        """Read as ``AwsResources()`` reads them (names are not case-sensitive); an invalid
        value raises ``pydantic_core.ValidationError`` (fail fast, at the first invocation)."""
        environment = {key.lower(): value for key, value in os.environ.items()}
        found = {
            name: environment[variable.lower()]
            for name, (variable, _, _) in _FIELDS.items()
            if variable.lower() in environment
        }
        return cls(**_VALIDATOR.validate_python(found))


def rejected(what: str, exc: ValidationError) -> dict[str, Any]:
    """The result of a malformed event: no side effects, a message and per-field details."""
    return {
        "status": "rejected",
        "error": f"invalid {what} event: {exc.error_count()} error(s)",
        "details": exc.errors(include_url=False, include_input=False, include_context=False),
    }

"""cdk-nag acknowledgements, each with a written reason, placed next to the resource it covers.

Context ``cst:nag:skipAcknowledgments=true`` turns every acknowledgement off: the
infrastructure tests synthesize once that way to prove that each acknowledgement matches a
finding cdk-nag really reports (and that nothing else is reported).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

SKIP_ACKNOWLEDGMENTS_CONTEXT: Final = "cst:nag:skipAcknowledgments"
# Validations ids are "<plugin>::<rule>"; without the plugin prefix CDK files them as annotations.
PLUGIN_PREFIX: Final = "AwsSolutions::"
MIN_REASON_LENGTH: Final = 40


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ``rule_id`` (``AwsSolutions-S1``, ``AwsSolutions-IAM5[Resource::*]``...)."""
    if not rule_id.startswith("AwsSolutions-"):
        raise ValueError(f"unexpected nag rule id {rule_id!r}")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"{rule_id} on {scope.node.path}: write the reason out, got {reason!r}")
    if scope.node.try_get_context(SKIP_ACKNOWLEDGMENTS_CONTEXT) in (True, "true"):
        return
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN_PREFIX}{rule_id}", reason=reason))

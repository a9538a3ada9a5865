"""CloudFormation custom resource that creates the kill-switch parameter ONCE and never writes it
again, so no deployment can reset a live switch.

CloudFormation owned the parameter before: any change to its construct (description, tier,
tags) made the update write the template's value, turning a live ON back to OFF. Now the stack
holds a ``Custom::KillSwitchSeed`` resource backed by this function:

* ``Create`` and ``Update``: ``PutParameter(Overwrite=False)`` with the initial value (off,
  reason "initial deployment", actor "cdk"); ``ParameterAlreadyExists`` means the operators'
  value stays — the outcome is ``kept``. Nothing here ever overwrites.
* ``Delete``: nothing. The parameter outlives the stack; a re-created stack finds the switch
  as it was left.

The function answers CloudFormation by PUTting the result to the request's pre-signed
``ResponseURL`` (what ``cfn-response`` does). Every failure is answered ``FAILED`` with its
reason, so a deployment fails fast instead of waiting an hour for a response: a parameter
that cannot be written, an unknown request type or invalid resource properties, an SSM that
does not answer within the invocation's budget, and any other error of the run.

The SSM work runs on a budget taken from the invocation's remaining time
(``context.get_remaining_time_in_millis()``) less what the answer needs
(:data:`ANSWER_RESERVE_S`): its client's connect and read timeouts and attempts are sized so
that every attempt, with the retry backoff, ends inside it, and the call is abandoned at the
budget's end whatever the socket does. A slow SSM is answered ``FAILED`` before the function
times out; the custom resource's ``ServiceTimeout`` bounds the stack's wait if no answer comes. The entry point is on the handlers' decorator
(``handlers._common.lambda_handler``): it validates only what an answer needs (the
``ResponseURL``, stack, request and logical resource ids); an event without them cannot be
answered, and fails the invocation loudly (:class:`UnanswerableRequestError`).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlparse

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.adapters.aws_clients import ssm_client
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.killswitch import encoded_value
from cryptosmarttrader.handlers._common import lambda_handler, make_logger
from cryptosmarttrader.settings import AwsResources

logger = make_logger("kill-switch-seed")

INITIAL_REASON: Final = "initial deployment"
INITIAL_ACTOR: Final = "cdk"
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1"})
_RESPONSE_TIMEOUT_S: Final = 30
# kept out of the SSM budget: the answer's PUT (its timeout is what is left, at most
# _RESPONSE_TIMEOUT_S) and the function's own return
ANSWER_RESERVE_S: Final = 10.0
_MIN_BUDGET_S: Final = 1.0
_MAX_CONNECT_S: Final = 5.0


@dataclass(frozen=True)
class SsmBudget:
    """The seed's SSM client settings: ``attempts`` (the first call included) × (``connect_s`` +
    ``read_s``) plus the standard retry mode's longest backoff between them fits in
    ``seconds``."""

    seconds: float
    attempts: int
    connect_s: float
    read_s: float

    def config(self) -> Config:
        return Config(
            connect_timeout=self.connect_s,
            read_timeout=self.read_s,
            retries={"total_max_attempts": self.attempts, "mode": "standard"},
        )


def ssm_budget(remaining_s: float) -> SsmBudget | None:
    """The SSM budget of an invocation with ``remaining_s`` left; None when, after the
    answer's reserve, not even one short attempt fits."""
    seconds = remaining_s - ANSWER_RESERVE_S
    if seconds < _MIN_BUDGET_S:
        return None
    attempts = 3 if seconds >= 30 else 2 if seconds >= 10 else 1
    # the standard mode's backoff before retry i is at most 2 ** (i - 1) seconds
    backoff = float(sum(2**i for i in range(attempts - 1)))
    # the client's own timeouts end a tenth before the hard stop (see _within): the botocore
    # error, which names what timed out, is the usual answer
    per_attempt = (seconds * 0.9 - backoff) / attempts
    connect = min(_MAX_CONNECT_S, per_attempt / 3)
    return SsmBudget(seconds, attempts, connect, per_attempt - connect)


class SsmBudgetExhaustedError(TimeoutError):
    """SSM did not answer within the invocation's budget."""


class _Properties(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    parameter_name: str = Field(alias="ParameterName", pattern=r"^/[A-Za-z0-9_.\-/]{1,1010}$")
    description: str = Field(default="", alias="Description", max_length=1024)


class CustomResourceRequest(BaseModel):
    """What CloudFormation sends a Lambda-backed custom resource: the fields an answer needs
    are required here; the request type and the properties are checked by the handler, which
    answers ``FAILED`` when they are wrong (the stack must hear about it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_type: str = Field(alias="RequestType")
    response_url: str = Field(alias="ResponseURL", min_length=1)
    stack_id: str = Field(alias="StackId", min_length=1)
    request_id: str = Field(alias="RequestId", min_length=1)
    logical_resource_id: str = Field(alias="LogicalResourceId", min_length=1)
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")
    properties: dict[str, Any] = Field(default_factory=dict, alias="ResourceProperties")


class UnanswerableRequestError(ValueError):
    """An event without the fields a CloudFormation answer needs: nobody can be told."""


def _unanswerable(exc: ValidationError) -> UnanswerableRequestError:
    logger.error("not a CloudFormation custom resource request", extra={"errors": exc.errors()})
    return UnanswerableRequestError(
        f"not a CloudFormation custom resource request: {exc.error_count()} error(s)"
    )


def initial_value(now: datetime) -> str:
    return encoded_value(
        {"on": False, "reason": INITIAL_REASON, "actor": INITIAL_ACTOR, "at": now.isoformat()}
    )


def seed(ssm: Any, name: str, description: str, now: datetime) -> Literal["created", "kept"]:
    """Create the parameter with the initial value unless it exists; never overwrite."""
    kwargs: dict[str, Any] = {
        "Name": name,
        "Value": initial_value(now),
        "Type": "String",
        "Tier": "Standard",
        "Overwrite": False,
    }
    if description:
        kwargs["Description"] = description
    try:
        ssm.put_parameter(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterAlreadyExists":
            return "kept"
        raise
    return "created"


def _within(budget: SsmBudget, work: Any) -> Any:
    """``work()`` abandoned at the budget's end (a daemon thread: a socket that trickles bytes
    past its read timeout holds nothing but that thread)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - carried to the caller
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="kill-switch-seed-ssm", daemon=True)
    worker.start()
    worker.join(budget.seconds)
    if worker.is_alive():
        raise SsmBudgetExhaustedError(f"SSM timeout: no answer within {budget.seconds:.1f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _respond(
    request: CustomResourceRequest,
    status: str,
    reason: str,
    data: dict[str, str],
    physical_id: str,
    timeout_s: float = _RESPONSE_TIMEOUT_S,
) -> None:
    url = urlparse(request.response_url)
    if not (url.scheme == "https" or (url.scheme == "http" and url.hostname in _LOCAL_HOSTS)):
        raise ValueError(f"refusing to answer CloudFormation at {url.scheme}://{url.hostname}")
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": physical_id,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
            "NoEcho": False,
            "Data": data,
        }
    ).encode()
    put = urllib.request.Request(  # noqa: S310 - scheme checked above
        request.response_url,
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(put, timeout=timeout_s) as answer:  # noqa: S310
        answer.read()


def _run(request: CustomResourceRequest, remaining_s: float) -> tuple[str, str, str, str]:
    """(status, reason, outcome, physical id) of one request with ``remaining_s`` left in the
    invocation; never raises."""
    physical = request.physical_resource_id or request.logical_resource_id
    try:
        properties = _Properties.model_validate(request.properties)
    except ValidationError as exc:
        if request.request_type == "Delete":  # nothing to delete: the parameter is kept
            return "SUCCESS", "kill-switch parameter: retained", "retained", physical
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        return "FAILED", f"invalid kill-switch seed properties: {fields}", "failed", physical
    name = properties.parameter_name
    if request.request_type == "Delete":
        return "SUCCESS", f"kill-switch parameter {name}: retained", "retained", name
    if request.request_type not in {"Create", "Update"}:
        reason = f"unknown custom resource request type {request.request_type[:64]!r}"
        return "FAILED", reason, "failed", name
    budget = ssm_budget(remaining_s)
    if budget is None:
        reason = f"kill-switch parameter {name} could not be created: no time left for SSM"
        return "FAILED", reason, "failed", name
    try:
        resources = AwsResources()
        ssm = ssm_client(resources.region, resources.aws_endpoint_url, budget.config())
        now = SystemClock().now()
        outcome = _within(budget, lambda: seed(ssm, name, properties.description, now))
    except (ClientError, BotoCoreError, ValueError, SsmBudgetExhaustedError) as exc:
        return "FAILED", f"kill-switch parameter {name} could not be created: {exc}", "failed", name
    except Exception as exc:  # any other failure must reach CloudFormation too
        logger.exception("kill-switch seed failed")
        reason = f"kill-switch parameter {name} could not be created: {type(exc).__name__}: {exc}"
        return "FAILED", reason, "failed", name
    return "SUCCESS", f"kill-switch parameter {name}: {outcome}", outcome, name


@lambda_handler(logger=logger, event=CustomResourceRequest, invalid=_unanswerable)
def handler(request: CustomResourceRequest, context: LambdaContext) -> dict[str, str]:
    status, reason, outcome, physical = _run(request, _remaining_s(context))
    logger.info(reason, extra={"request_type": request.request_type, "status": status})
    # the answer gets what is left (the reserve at least), never past the function's end
    answer_s = max(1.0, min(float(_RESPONSE_TIMEOUT_S), _remaining_s(context) - 1.0))
    _respond(request, status, reason, {"Outcome": outcome}, physical, answer_s)
    return {"status": status, "outcome": outcome}


def _remaining_s(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000

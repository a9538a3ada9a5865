"""Exchange API credentials from AWS Secrets Manager, through Powertools Parameters.

One secret per exchange holds ``{"api_key": ..., "secret": ..., "password": ...}`` JSON
(``password`` is the KuCoin passphrase). Values are read with the Powertools ``SecretsProvider``
(``get_secret`` semantics: JSON transform, in-memory cache for ``max_age`` seconds) and kept in
pydantic ``SecretStr`` fields, so ``repr``, ``str`` and log records show ``**********``. They
are never taken from environment variables: a deployment passes only the secret's *name*.

:class:`ReadOnlyKeys` reads the ingest function's READ-ONLY keys (market data that a venue
publishes to signed requests only, such as Binance's currency data) the same way, from their
own secret: a secret that does not exist or holds no keys is not an error but an answer (no
keys), stated with the reason by the caller.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from cryptosmarttrader.settings import AwsResources

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "CredentialsUnavailableError",
    "ExchangeCredentials",
    "ReadOnlyKeys",
    "SecretsManagerCredentials",
    "secrets_client",
]

DEFAULT_MAX_AGE_SECONDS = 300


class CredentialsUnavailableError(RuntimeError):
    """The secret is missing, unreadable or malformed. The message never contains its value."""


class ExchangeCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    api_key: SecretStr = Field(min_length=1)
    secret: SecretStr = Field(min_length=1)
    password: SecretStr | None = None

    def ccxt_config(self) -> dict[str, str]:
        """The keyword arguments ccxt expects (``apiKey``, ``secret``, ``password``)."""
        config = {
            "apiKey": self.api_key.get_secret_value(),
            "secret": self.secret.get_secret_value(),
        }
        if self.password is not None:
            config["password"] = self.password.get_secret_value()
        return config


def secrets_client(resources: AwsResources) -> SecretsManagerClient:
    kwargs: dict[str, object] = {"region_name": resources.region}
    if resources.aws_endpoint_url:
        kwargs["endpoint_url"] = resources.aws_endpoint_url
    return boto3.client("secretsmanager", **kwargs)  # type: ignore[call-overload]


class SecretsManagerCredentials:
    """Reads and caches exchange credentials; one instance per execution environment."""

    def __init__(
        self, client: SecretsManagerClient, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS
    ) -> None:
        if max_age_seconds < 0:
            raise ValueError(f"max_age_seconds must be >= 0, got {max_age_seconds}")
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age = max_age_seconds

    def get(self, secret_name: str) -> ExchangeCredentials:
        try:
            raw = self._provider.get(secret_name, transform="json", max_age=self._max_age)
        except (GetParameterError, TransformParameterError) as exc:
            # Powertools messages name the secret and the AWS error code, never the value.
            raise CredentialsUnavailableError(
                f"exchange credentials {secret_name!r} unavailable: {type(exc).__name__}"
            ) from None
        try:
            return ExchangeCredentials.model_validate(raw)
        except ValidationError as exc:
            raise CredentialsUnavailableError(
                f"exchange credentials {secret_name!r} malformed: fields {_fields(exc)} "
                "(expected JSON with api_key, secret and optional password)"
            ) from None


def _fields(exc: ValidationError) -> list[str]:
    """The malformed fields of a keys secret, by name only (never their values)."""
    return sorted({".".join(str(p) for p in e["loc"]) or "value" for e in exc.errors()})


class ReadOnlyKeys:
    """Read-only exchange keys from Secrets Manager (Powertools ``SecretsProvider``, cached
    ``max_age`` seconds like :class:`SecretsManagerCredentials`); one instance per execution
    environment. ``get`` answers None when the secret does not exist or holds no keys (a
    JSON object without ``api_key``: the stack creates it so), the credentials when it holds
    them, and raises :class:`CredentialsUnavailableError` when it cannot be read or is malformed
    (naming neither the value nor the secret: the message becomes an agent's stated reason)."""

    def __init__(
        self, client: SecretsManagerClient, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS
    ) -> None:
        if max_age_seconds < 0:
            raise ValueError(f"max_age_seconds must be >= 0, got {max_age_seconds}")
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age = max_age_seconds

    def get(self, secret_name: str) -> ExchangeCredentials | None:
        try:
            raw = self._provider.get(secret_name, max_age=self._max_age)
        except GetParameterError as exc:
            if "ResourceNotFoundException" in str(exc):
                return None
            raise CredentialsUnavailableError(
                f"read-only keys unreadable: {type(exc).__name__}"
            ) from None
        text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
        try:
            value = json.loads(text) if text.strip() else {}
        except ValueError:
            raise CredentialsUnavailableError(
                'read-only keys malformed: not JSON (expected {"api_key": ..., "secret": ...})'
            ) from None
        if not isinstance(value, dict):
            raise CredentialsUnavailableError("read-only keys malformed: not a JSON object")
        if not value.get("api_key") and not value.get("secret"):
            return None  # created empty by the stack: no keys configured
        fields = {k: v for k, v in value.items() if k in ExchangeCredentials.model_fields}
        try:
            return ExchangeCredentials.model_validate(fields)
        except ValidationError as exc:
            raise CredentialsUnavailableError(
                f"read-only keys malformed: fields {_fields(exc)} "
                "(expected JSON with api_key, secret and optional password)"
            ) from None

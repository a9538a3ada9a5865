"""One dependency check of the deep health: what the probes return and the service judges."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EXCHANGE_CHECK", "HealthCheck", "HealthStatus"]

HealthStatus = Literal["ok", "error", "unreachable", "unknown"]
EXCHANGE_CHECK: Final = "exchange"


class HealthCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="dynamodb, s3, ssm or exchange")
    status: HealthStatus
    detail: str
    latency_ms: float = Field(ge=0)

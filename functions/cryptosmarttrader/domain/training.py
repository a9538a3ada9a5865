"""A SageMaker training job as the launcher asks for it and as it reads it back."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrainingJobRequest", "TrainingJobState"]


class TrainingJobRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    image_uri: str = Field(min_length=1)
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    source_key: str
    channel_key: str
    output_prefix: str
    instance_type: str = "ml.m5.xlarge"
    volume_gb: int = Field(default=10, ge=1)
    max_runtime_s: int = Field(default=3 * 3600, ge=60)
    hyperparameters: dict[str, str]


@dataclass(frozen=True)
class TrainingJobState:
    name: str
    status: str  # InProgress | Completed | Failed | Stopping | Stopped
    failure_reason: str | None
    model_artifacts: str | None  # s3:// URI of model.tar.gz once completed

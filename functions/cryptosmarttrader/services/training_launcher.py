"""Train on SageMaker: start a script-mode training job of ``ml/train.py`` and register its model.

``start``: the source dir tarball (``ml/train.py``, ``ml/inference.py``, the package and a
``requirements.txt``) and the ``train`` channel (Parquet daily bars) are uploaded to the lake,
then one training job is created: the XGBoost framework image, the SageMaker role,
``SM_CHANNEL_TRAIN`` from ``s3://<lake>/ml/training/<job>/``, output under
``s3://<lake>/models/training-jobs/``, the walk-forward parameters as hyperparameters.
``wait``: polls the job until it ends; on ``Completed`` reads ``model.json``, ``card.json``
and ``reference.json`` from its ``model.tar.gz`` (what ``ml/train.py`` writes to
``SM_MODEL_DIR``) and registers them — the card is the one train.py recorded, unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.drift import DriftReference
from cryptosmarttrader.domain.model_canary import ModelCard, ModelVersion
from cryptosmarttrader.domain.training import TrainingJobRequest, TrainingJobState
from cryptosmarttrader.ports import TrainingJobs
from cryptosmarttrader.services.model_lifecycle import LifecycleError
from cryptosmarttrader.services.model_registry import ModelRegistryService

__all__ = [
    "TrainingJobRequest",
    "TrainingJobState",
    "TrainingJobs",
    "TrainingLauncher",
    "TrainingParams",
]

ENDED: Final = frozenset({"Completed", "Failed", "Stopped"})


class TrainingParams(BaseModel):
    """The ``ml/train.py`` arguments a job runs with (hyperparameters)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train_end: date
    first_day: date | None = None
    horizon_days: int = Field(default=30, ge=1, le=365)
    threshold: float = Field(default=0.5, gt=0)
    rounds: int = Field(default=200, ge=1)
    features: tuple[str, ...] = ()
    git_commit: str = Field(min_length=1)

    def hyperparameters(self) -> dict[str, str]:
        out = {
            "train-end": self.train_end.isoformat(),
            "horizon-days": str(self.horizon_days),
            "threshold": repr(self.threshold),
            "rounds": str(self.rounds),
            "git-commit": self.git_commit,
        }
        if self.first_day is not None:
            out["first-day"] = self.first_day.isoformat()
        if self.features:
            out["features"] = ",".join(self.features)
        return out


@dataclass(frozen=True)
class TrainingLauncher:
    jobs: TrainingJobs
    registry: ModelRegistryService
    clock: Clock
    image_uri: str
    role_arn: str
    sleep: Callable[[float], None] = time.sleep

    def start(self, params: TrainingParams, source: bytes, channel: bytes) -> str:
        """Upload the source dir and the channel, start the job; returns the job name."""
        name = f"{self.registry.registry.group}-{self.clock.now():%Y%m%d-%H%M%S}"
        source_key = f"models/code/{name}/sourcedir.tar.gz"
        channel_key = f"ml/training/{name}/train/daily.parquet"
        self.jobs.put(source_key, source)
        self.jobs.put(channel_key, channel)
        self.jobs.start(
            TrainingJobRequest(
                name=name,
                image_uri=self.image_uri,
                role_arn=self.role_arn,
                source_key=source_key,
                channel_key=channel_key,
                output_prefix="models/training-jobs",
                hyperparameters=params.hyperparameters(),
            )
        )
        return name

    def wait(
        self, name: str, *, poll_seconds: float = 30.0, timeout_seconds: float = 4 * 3600
    ) -> ModelVersion:
        """Poll until the job ends; register its model when it completed."""
        waited = 0.0
        state = self.jobs.describe(name)
        while state.status not in ENDED:
            if waited >= timeout_seconds:
                raise LifecycleError(f"training job {name} still {state.status} after {waited}s")
            self.sleep(poll_seconds)
            waited += poll_seconds
            state = self.jobs.describe(name)
        if state.status != "Completed" or not state.model_artifacts:
            raise LifecycleError(
                f"training job {name} {state.status}: {state.failure_reason or 'no model'}"
            )
        files = self.jobs.model_files(state.model_artifacts)
        missing = [f for f in ("model.json", "card.json", "reference.json") if f not in files]
        if missing:
            raise LifecycleError(f"{state.model_artifacts} lacks {missing}")
        card = ModelCard.model_validate_json(files["card.json"])
        reference = DriftReference.model_validate_json(files["reference.json"])
        return self.registry.register(card, files["model.json"], reference)

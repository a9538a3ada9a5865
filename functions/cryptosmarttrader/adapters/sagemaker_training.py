"""SageMaker training jobs for ``ml/train.py`` in script mode (the ``TrainingJobs`` port).

* :func:`source_dir_tarball`: ``sourcedir.tar.gz`` as the framework container's training
  toolkit expects it — the entry point at the root (``train.py``), ``inference.py``, the
  ``cryptosmarttrader`` package (without its CLI and Lambda handlers) and a ``requirements.txt``
  the toolkit installs before running the entry point. Deterministic bytes (sorted, mtime 0).
* :func:`training_image_uri`: the framework image the job runs in. The package needs Python
  >= 3.11 (the Lambdas run 3.12), and the SageMaker XGBoost images run 3.8 (``1.7-1``) or 3.10
  (``3.0-5``); so training uses AWS's PyTorch CPU training container for Python 3.12 (the same
  script-mode toolkit: ``sagemaker_program``, ``requirements.txt``), which installs
  ``xgboost-cpu`` from the requirements. The serverless endpoint keeps the XGBoost image: its
  ``inference.py`` needs only numpy and xgboost.
* :class:`SageMakerTrainingJobs`: ``CreateTrainingJob`` (script mode: ``sagemaker_program`` and
  ``sagemaker_submit_directory`` hyperparameters, JSON-encoded like every hyperparameter as the
  SageMaker SDK sends them), ``DescribeTrainingJob``, and the job's ``model.tar.gz``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cryptosmarttrader.domain.training import TrainingJobRequest, TrainingJobState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DLC_REGISTRY",
    "TRAINING_IMAGE_TAG",
    "TRAINING_REPOSITORY",
    "SageMakerTrainingJobs",
    "source_dir_tarball",
    "training_image_uri",
]

# AWS Deep Learning Containers registry account of the commercial regions listed; elsewhere pass
# CST_TRAINING_IMAGE_URI (and grant its repository to the SageMaker role).
DLC_REGISTRY: Final = "763104351884"
DLC_REGIONS: Final = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
        "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-south-1",
    }
)  # fmt: skip
TRAINING_REPOSITORY: Final = "pytorch-training"
TRAINING_IMAGE_TAG: Final = "2.6.0-cpu-py312-ubuntu22.04-sagemaker"
REQUIREMENTS: Final = (
    "xgboost-cpu>=2.1\npolars>=1.0\npydantic>=2.7\npydantic-settings>=2.3\nscikit-learn>=1.4\n"
)
_SKIPPED_PACKAGES: Final = ("cli", "handlers")
METRIC_DEFINITIONS: Final = [
    {"Name": f"oos:{name}", "Regex": f"oos_{name}=([-0-9.eE]+|nan|None);"}
    for name in ("auc", "brier", "ece", "precision_at_k", "lift")
]


def training_image_uri(region: str, tag: str = TRAINING_IMAGE_TAG) -> str:
    """The Python 3.12 framework training image of ``region`` (see the module docstring)."""
    if region not in DLC_REGIONS:
        raise ValueError(
            f"no training image registry known for {region}: set CST_TRAINING_IMAGE_URI to a "
            "script-mode image with Python >= 3.11"
        )
    return f"{DLC_REGISTRY}.dkr.ecr.{region}.amazonaws.com/{TRAINING_REPOSITORY}:{tag}"


def source_dir_tarball(repo_root: Path) -> bytes:
    files: list[tuple[str, bytes]] = [
        ("train.py", (repo_root / "ml" / "train.py").read_bytes()),
        ("inference.py", (repo_root / "ml" / "inference.py").read_bytes()),
        ("requirements.txt", REQUIREMENTS.encode()),
    ]
    package = repo_root / "functions" / "cryptosmarttrader"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent)
        if relative.parts[1] in _SKIPPED_PACKAGES:
            continue
        files.append((relative.as_posix(), path.read_bytes()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, body in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(body), 0, 0o644
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


class SageMakerTrainingJobs:
    def __init__(self, sagemaker: Any, s3: S3Client, bucket: str) -> None:
        self._sm = sagemaker
        self._s3 = s3
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> str:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        return f"s3://{self._bucket}/{key}"

    def start(self, request: TrainingJobRequest) -> str:
        base = f"s3://{self._bucket}"
        channel_prefix = request.channel_key.rsplit("/", 1)[0] + "/"
        hyper = {
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": f"{base}/{request.source_key}",
            **request.hyperparameters,
        }
        response = self._sm.create_training_job(
            TrainingJobName=request.name,
            AlgorithmSpecification={
                "TrainingImage": request.image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
            },
            RoleArn=request.role_arn,
            HyperParameters={k: json.dumps(v) for k, v in hyper.items()},
            InputDataConfig=[
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"{base}/{channel_prefix}",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": "application/x-parquet",
                }
            ],
            OutputDataConfig={"S3OutputPath": f"{base}/{request.output_prefix}"},
            ResourceConfig={
                "InstanceType": request.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": request.volume_gb,
            },
            StoppingCondition={"MaxRuntimeInSeconds": request.max_runtime_s},
        )
        return str(response["TrainingJobArn"])

    def describe(self, name: str) -> TrainingJobState:
        job = self._sm.describe_training_job(TrainingJobName=name)
        return TrainingJobState(
            name=name,
            status=str(job["TrainingJobStatus"]),
            failure_reason=job.get("FailureReason"),
            model_artifacts=(job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        )

    def model_files(self, model_artifacts: str) -> Mapping[str, bytes]:
        bucket, _, key = model_artifacts.removeprefix("s3://").partition("/")
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        out: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    out[member.name.removeprefix("./")] = handle.read()
        return out

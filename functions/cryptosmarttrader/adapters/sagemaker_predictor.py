"""Predictors for the models SageMaker trains (xgboost JSON), without xgboost in the Lambda.

* :class:`SageMakerPredictor` calls the serverless endpoint: CSV rows in, one probability per
  line out.
* :class:`SageMakerRanker` calls the endpoint serving the promoted ranking model (``rank:*``
  booster): CSV rows in, one score (the booster's margin) per line out. Before it scores (one
  ``DescribeEndpoint`` per ``score``, i.e. per scan run, never per coin) it checks the endpoint
  is ``InService`` on the configuration of the registry's promoted version
  (``<endpoint>-v<N>-<sha8>``): an endpoint still creating or updating, rolled back to, or left
  on another version would score with a booster the calibration was not fitted for. That
  mismatch, any failure of the call, or an answer that is not one finite score per row raises
  ``RankerUnavailableError`` naming the endpoint: the model's agents (ml, ensemble) then
  abstain with that reason, never falling back to another evaluator.
* :class:`TreeEnsemblePredictor` evaluates the same xgboost JSON model in numpy, in process. The
  drift and canary Lambdas use it: xgboost imports scipy, and polars + numpy + scipy + xgboost
  do not fit Lambda's 250 MB unzipped limit. It follows xgboost's own rules — features and
  split thresholds in float32, ``x < threshold`` goes left, a missing value takes the node's
  default direction, margin = logit(base_score) + sum of leaves, sigmoid for
  ``binary:logistic`` — and is tested against xgboost on the real models.

The wire format is the one ``ml/inference.py`` serves: ``text/csv`` with the model's feature
columns in card order, an empty field for a missing value, no header. Rows go in chunks so a
request stays under the serverless payload limit (4 MB); the whole universe (~500 rows x 23
features) is one request.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "SageMakerPredictor",
    "SageMakerRanker",
    "TreeEnsemblePredictor",
    "decode_probabilities",
    "decode_scores",
    "encode_rows",
]

FloatArray = npt.NDArray[np.float64]
CONTENT_TYPE: Final = "text/csv"
ROWS_PER_REQUEST: Final = 5_000


def encode_rows(features: FloatArray) -> bytes:
    """Rows as CSV, ``repr`` precision (round-trips float64 exactly), NaN as an empty field."""
    lines = (
        ",".join("" if math.isnan(v) else repr(float(v)) for v in row) for row in features.tolist()
    )
    return ("\n".join(lines) + "\n").encode()


def decode_probabilities(body: bytes, expected: int) -> FloatArray:
    values = [float(x) for x in body.decode().split()]
    if len(values) != expected:
        raise ValueError(f"endpoint returned {len(values)} probabilities for {expected} rows")
    out = np.asarray(values, dtype=np.float64)
    if not np.all((out >= 0) & (out <= 1)):
        raise ValueError("endpoint returned values outside [0, 1]")
    return out


def decode_scores(body: bytes, expected: int) -> FloatArray:
    """One finite score per row (newline- or comma-separated, as the xgboost container answers)."""
    values = [float(x) for x in body.decode().replace(",", " ").split()]
    if len(values) != expected:
        raise ValueError(f"endpoint returned {len(values)} scores for {expected} rows")
    out = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError("endpoint returned a score that is not a finite number")
    return out


class SageMakerRanker:
    """``Ranker`` served by a SageMaker endpoint: the promoted ranking model's scores, only
    while the endpoint serves that version (``expected_config``, checked with ``sagemaker``,
    the control-plane client, once per ``score``)."""

    def __init__(
        self,
        endpoint: str,
        feature_names: tuple[str, ...],
        runtime: Any,
        model: bytes,
        *,
        version: int,
        expected_config: str,
        sagemaker: Any,
    ) -> None:
        self._endpoint = endpoint
        self._names = feature_names
        self._runtime = runtime
        self._model = model  # the registry artefact's booster, the one the endpoint must serve
        self._version = version
        self._expected = expected_config
        self._sagemaker = sagemaker

    @property
    def expected_config(self) -> str:
        return self._expected

    def check_serving(self) -> None:
        """Raise ``RankerUnavailableError`` unless the endpoint is ``InService`` on the
        promoted version's configuration."""
        from botocore.exceptions import BotoCoreError, ClientError

        from cryptosmarttrader.ports import RankerUnavailableError

        try:
            described = self._sagemaker.describe_endpoint(EndpointName=self._endpoint)
        except (ClientError, BotoCoreError) as exc:
            raise RankerUnavailableError(
                f"ranking endpoint {self._endpoint} failed: cannot check which version it "
                f"serves: {str(exc).splitlines()[0]}"
            ) from exc
        served = str(described.get("EndpointConfigName", ""))
        status = str(described.get("EndpointStatus", "unknown"))
        if served != self._expected:
            raise RankerUnavailableError(
                f"ranking endpoint {self._endpoint} serves {served or 'nothing'}, not the "
                f"promoted v{self._version} ({self._expected}): abstaining until it is "
                "redeployed"
            )
        if status != "InService":
            raise RankerUnavailableError(
                f"ranking endpoint {self._endpoint} is {status}, not InService on the promoted "
                f"v{self._version} ({self._expected}): abstaining until it is"
            )

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def to_bytes(self) -> bytes:
        return self._model

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def score(self, features: FloatArray) -> FloatArray:
        from botocore.exceptions import BotoCoreError, ClientError

        from cryptosmarttrader.ports import RankerUnavailableError

        if features.ndim != 2 or features.shape[1] != len(self._names):
            raise ValueError(f"expected (n, {len(self._names)}) features, got {features.shape}")
        self.check_serving()
        parts: list[FloatArray] = []
        for start in range(0, features.shape[0], ROWS_PER_REQUEST):
            chunk = features[start : start + ROWS_PER_REQUEST]
            try:
                response = self._runtime.invoke_endpoint(
                    EndpointName=self._endpoint,
                    ContentType=CONTENT_TYPE,
                    Accept=CONTENT_TYPE,
                    Body=encode_rows(chunk),
                )
                parts.append(decode_scores(response["Body"].read(), chunk.shape[0]))
            except (ClientError, BotoCoreError, ValueError, KeyError) as exc:
                raise RankerUnavailableError(
                    f"ranking endpoint {self._endpoint} failed: {str(exc).splitlines()[0]}"
                ) from exc
        return np.concatenate(parts) if parts else np.empty(0)


class SageMakerPredictor:
    def __init__(self, endpoint: str, feature_names: tuple[str, ...], runtime: Any) -> None:
        self._endpoint = endpoint
        self._names = feature_names
        self._runtime = runtime

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def predict_proba(self, features: FloatArray) -> FloatArray:
        if features.ndim != 2 or features.shape[1] != len(self._names):
            raise ValueError(f"expected (n, {len(self._names)}) features, got {features.shape}")
        parts: list[FloatArray] = []
        for start in range(0, features.shape[0], ROWS_PER_REQUEST):
            chunk = features[start : start + ROWS_PER_REQUEST]
            response = self._runtime.invoke_endpoint(
                EndpointName=self._endpoint,
                ContentType=CONTENT_TYPE,
                Accept=CONTENT_TYPE,
                Body=encode_rows(chunk),
            )
            parts.append(decode_probabilities(response["Body"].read(), chunk.shape[0]))
        return np.concatenate(parts) if parts else np.empty(0)


@dataclass(frozen=True)
class _Tree:
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float32]
    default_left: npt.NDArray[np.bool_]
    depth: int


def _tree(raw: dict[str, Any]) -> _Tree:
    left = np.asarray(raw["left_children"], dtype=np.int64)
    if any(raw.get("split_type") or []) or raw.get("categories"):
        raise ValueError("categorical splits are not supported")
    parents = np.asarray(raw["parents"], dtype=np.int64)
    depth = np.zeros(left.size, dtype=np.int64)
    for node in range(1, left.size):  # parents come before children in xgboost's layout
        depth[node] = depth[parents[node]] + 1
    return _Tree(
        left=left,
        right=np.asarray(raw["right_children"], dtype=np.int64),
        feature=np.asarray(raw["split_indices"], dtype=np.int64),
        threshold=np.asarray(raw["split_conditions"], dtype=np.float32),
        default_left=np.asarray(raw["default_left"], dtype=np.bool_),
        depth=int(depth.max()),
    )


class TreeEnsemblePredictor:
    """``Predictor`` over an xgboost JSON ``gbtree`` / ``binary:logistic`` model, numpy only."""

    def __init__(self, trees: list[_Tree], base_margin: float, feature_names: tuple[str, ...]):
        self._trees = trees
        self._base = np.float32(base_margin)
        self._names = feature_names

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    @classmethod
    def from_bytes(cls, raw: bytes, feature_names: tuple[str, ...]) -> TreeEnsemblePredictor:
        learner = json.loads(raw)["learner"]
        if learner["objective"]["name"] != "binary:logistic":
            raise ValueError(f"unsupported objective {learner['objective']['name']}")
        booster = learner["gradient_booster"]
        if booster["name"] != "gbtree":
            raise ValueError(f"unsupported booster {booster['name']}")
        params = learner["learner_model_param"]
        if int(params["num_feature"]) != len(feature_names):
            raise ValueError(
                f"model has {params['num_feature']} features, card lists {len(feature_names)}"
            )
        base_score = float(str(params["base_score"]).strip("[]"))
        if not 0.0 < base_score < 1.0:
            raise ValueError(f"base_score {base_score} is not a probability")
        base_margin = math.log(base_score / (1.0 - base_score))
        return cls([_tree(t) for t in booster["model"]["trees"]], base_margin, feature_names)

    def predict_proba(self, features: FloatArray) -> FloatArray:
        if features.ndim != 2 or features.shape[1] != len(self._names):
            raise ValueError(f"expected (n, {len(self._names)}) features, got {features.shape}")
        x = features.astype(np.float32)
        rows = np.arange(x.shape[0])
        margin = np.full(x.shape[0], self._base, dtype=np.float32)
        for tree in self._trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            for _ in range(tree.depth):  # one vectorized step per level
                inner = tree.left[node] != -1
                value = x[rows, np.where(inner, tree.feature[node], 0)]
                go_left = np.where(
                    np.isnan(value), tree.default_left[node], value < tree.threshold[node]
                )
                node = np.where(inner, np.where(go_left, tree.left[node], tree.right[node]), node)
            margin += tree.threshold[node]  # a leaf stores its value in split_conditions
        out: FloatArray = 1.0 / (1.0 + np.exp(-margin.astype(np.float64)))
        return out

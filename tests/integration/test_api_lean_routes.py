"""The API function's bundle holds neither polars nor numpy: every route API Gateway sends it
answers without them, and only the lake routes are left to the API's lake function.

A fresh interpreter refuses any import of polars or numpy (as the lean bundle would: they are
not in it), runs the real handler on moto with the deployed settings (the lake, not the recorded
data), and calls every route but the three lake routes with API Gateway's proxy event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptosmarttrader.handlers.api import LAKE_ROUTES
from infra.constructs.api import API_LAKE_ROUTES, KILLSWITCH_ROUTE, PUBLIC_ROUTES, READ_ROUTES

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.abc, json, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("polars", "numpy"):
            raise ImportError(f"{name} is not in the API bundle")
        return None

sys.meta_path.insert(0, Refuse())
from moto import mock_aws
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from tests.integration.test_api import Context, api_event

calls = json.loads(sys.argv[1])
with mock_aws():
    ensure_resources(AwsClients.build(AwsResources()))
    from cryptosmarttrader.handlers import api
    answers = {}
    for method, path, body in calls:
        user = "arn:aws:iam::123456789012:user/risk-officer" if method == "POST" else None
        event = api_event(method, path, body=body, user_arn=user)
        answers[f"{method} {path}"] = api.handler(event, Context())["statusCode"]
print(json.dumps({"answers": answers, "heavy": [m for m in ("polars", "numpy") if m in sys.modules]}))
"""


def test_every_route_of_the_api_function_answers_without_polars_or_numpy() -> None:
    # Given every route API Gateway sends to the API function (the lake routes go elsewhere)
    assert set(LAKE_ROUTES) == set(API_LAKE_ROUTES)
    lean = [r for r in (*PUBLIC_ROUTES, *READ_ROUTES) if r not in API_LAKE_ROUTES]
    calls = [("GET", route, None) for route in lean]
    calls.append(("POST", KILLSWITCH_ROUTE, {"on": True, "reason": "drill without polars"}))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "CST_DATA_SOURCE": "ccxt",  # as deployed: candles from the lake
    }
    env.pop("AWS_ENDPOINT_URL", None)

    # When each is called on an interpreter that cannot import polars or numpy
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # Then every one answers (no 5xx) and neither library was loaded
    assert result["heavy"] == []
    failed = {call: status for call, status in result["answers"].items() if status >= 500}
    assert failed == {}, result["answers"]
    assert len(result["answers"]) == len(calls)

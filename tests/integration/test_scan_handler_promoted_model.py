"""The deployed scan function serves the version the registry holds in production at each
scheduled run, also when its execution environment is reused (a warm Lambda)."""

# ruff: noqa: F811  (the fixtures are imported from the ranking deployment module)
from __future__ import annotations

import pytest

from cryptosmarttrader import wiring
from cryptosmarttrader.domain.model_canary import ModelStage
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.handlers import scan as scan_handler
from cryptosmarttrader.services.model_registry import with_stage
from cryptosmarttrader.settings import MlSettings
from tests.integration.test_ranking_deployment import (  # noqa: F401  (fixtures)
    Aws,
    Real,
    _in_production,
    _register,
    aws,
    real,
)

pytestmark = pytest.mark.realdata


def test_a_warm_scan_function_stops_serving_a_version_taken_out_of_production(
    real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the scan function scoring in process (no endpoint) the production version v1
    monkeypatch.delenv("CST_RANKING_ENDPOINT")
    monkeypatch.setenv("CST_DATA_SOURCE", "ccxt")
    _common.reset_caches()
    scan_handler._service.cache_clear()
    first = _in_production(aws, _register(real, aws))
    try:
        assert scan_handler._service().for_this_run().analyzer.model is not None
        # When the operator takes v1 out of production (a rollback with nothing to roll
        # back to): a cold start now serves no model, says so and trades nothing
        registry = wiring.ranking_registry(MlSettings(), aws.resources, aws.clients)
        registry.save(
            with_stage(first, ModelStage.ARCHIVED, at=aws.clock.now(), reason="bad", actor="t")
        )
        assert wiring.promoted_model(aws.clients, aws.resources, aws.clock) is None
        # Then the next scheduled run of the same (warm) function does not serve v1 either
        analyzer = scan_handler._service().for_this_run().analyzer
        assert analyzer.model is None, "a warm scan function still ranks on the archived v1"
        assert analyzer.no_model_reason is not None
    finally:
        scan_handler._service.cache_clear()
        _common.reset_caches()

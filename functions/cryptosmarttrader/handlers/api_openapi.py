"""The API's OpenAPI 3 document, built from the API function's route table (``handlers.api.
ROUTES``, passed in) and the services' pydantic models by Powertools' OpenAPI generator.

Off the cold-start path: imported by ``cst api openapi`` (which writes ``docs/openapi.json``),
the local server's route table, the tests, and the API's ``GET /openapi.json`` on its first
call. Each route is registered on an ``APIGatewayRestResolver`` as a signature only (its
parameters typed ``Annotated[<type>, Path(...) | Query(...) | Body()]`` from the table, its
return type the route's response model) that is never called: the resolver serves nothing, it
describes what ``handlers._router`` serves.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler import Response as PowertoolsResponse
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from cryptosmarttrader.handlers._router import REQUIRED, Route
from cryptosmarttrader.services import api as api_models
from cryptosmarttrader.services import dashboard as dashboard_models

__all__ = ["Document", "describing_resolver", "openapi_json"]


@dataclass(frozen=True)
class Document:
    """What the document says besides the routes: its title, version, description, the two
    security schemes' names, and the name the routes give the error body's model."""

    title: str
    version: str
    description: str
    api_key_scheme: str
    sigv4_scheme: str
    error_model: str

    def security_schemes(self) -> dict[str, Any]:
        return {
            self.api_key_scheme: APIKey(
                name="x-api-key",
                in_=APIKeyIn.header,
                description="API Gateway API key of a usage plan (throttled, quota-limited).",
            ),
            self.sigv4_scheme: APIKey(
                name="Authorization",
                in_=APIKeyIn.header,
                description="AWS Signature Version 4 (IAM): the caller needs execute-api:Invoke.",
            ),
        }


# routes whose endpoint answers a router Response: the model the document declares
_RETURNS: Mapping[str, Any] = {
    "liveness": api_models.Liveness,
    "health": PowertoolsResponse[api_models.HealthResponse],
    "openapi_document": dict[str, Any],
}


def _return_type(route: Route) -> Any:
    if route.name in _RETURNS:
        return _RETURNS[route.name]
    namespace = {**route.endpoint.__globals__, **vars(api_models), **vars(dashboard_models)}
    return typing.get_type_hints(route.endpoint, globalns=namespace)["return"]


def _responses(route: Route, error_model: str) -> dict[int, Any]:
    """The route's responses, with the error body's model in place of its name."""
    models = {error_model: api_models.ApiError}
    resolved: dict[int, Any] = {}
    for status, response in route.responses.items():
        content = response.get("content")
        if content is None:
            resolved[status] = dict(response)
            continue
        resolved[status] = {
            **response,
            "content": {
                kind: {**media, "model": models[media["model"]]} for kind, media in content.items()
            },
        }
    return resolved


def _signature_of(route: Route) -> Callable[..., Any]:
    parameters = []
    for param in route.params:
        where = Path if param.where == "path" else Query
        parameters.append(
            inspect.Parameter(
                param.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=inspect.Parameter.empty if param.default is REQUIRED else param.default,
                annotation=Annotated[param.annotation, where(**param.constraints)],
            )
        )
    if route.body is not None:
        parameters.append(
            inspect.Parameter(
                "request",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=Annotated[route.body(), Body()],
            )
        )

    def described(**_: Any) -> Any:
        raise RuntimeError("the document's routes are descriptions; handlers.api serves them")

    described.__name__ = described.__qualname__ = route.name  # the operation ids
    described.__doc__ = None
    described.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=_return_type(route)
    )
    return described


def _powertools_rule(path: str) -> str:
    return path.replace("{", "<").replace("}", ">")


def describing_resolver(routes: Sequence[Route], error_model: str) -> APIGatewayRestResolver:
    """A resolver that holds the API's routes as descriptions (for the document only)."""
    resolver = APIGatewayRestResolver(enable_validation=True)
    for route in routes:
        resolver.route(
            _powertools_rule(route.path),
            route.method,
            summary=route.summary,
            tags=list(route.tags),
            security=[
                {scheme: list(scopes) for scheme, scopes in requirement.items()}
                for requirement in route.security
            ],
            responses=_responses(route, error_model),
        )(_signature_of(route))
    return resolver


def openapi_json(
    routes: Sequence[Route], document: Document, servers: list[str] | None = None
) -> str:
    """The OpenAPI 3 document of the API (the published ``docs/openapi.json``)."""
    return describing_resolver(routes, document.error_model).get_openapi_json_schema(
        title=document.title,
        version=document.version,
        description=document.description,
        servers=[Server(url=url) for url in servers] if servers else None,
        security_schemes=document.security_schemes(),
    )

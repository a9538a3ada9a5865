"""A small typed router over API Gateway's REST proxy event (payload 1.0), for the API function.

Method + path → route; path and query parameters validated by pydantic's validator core
(``pydantic_core.SchemaValidator``, built once at import: no ``pydantic.BaseModel``); the JSON
body validated by the route's pydantic model, imported on the first request that carries one;
pydantic response models answered as ``model_dump(mode="json", by_alias=True)`` in strict JSON
(``domain.jsonout``: a non-finite number is null).

It answers as Powertools' Event Handler (``APIGatewayRestResolver`` with validation) did, which
it replaces in the API function because that resolver and its OpenAPI models cost 1.88x
``import boto3`` at a cold start on their own (``bench/bench_cold_import.py``):

* a route matches the request's ``path`` (never its ``resource``) exactly, trailing slashes
  ignored; a path parameter is one segment (``[-._~()'!*:@,;=+&$%<> [\\]{}|^\\w]+``), as sent;
* no route: ``404 {"statusCode": 404, "message": "Not found"}``; with CORS configured, an
  ``OPTIONS`` request of no route is the preflight answer (``204``, ``Access-Control-Allow-
  Methods`` the routes' methods and ``OPTIONS``);
* invalid parameters or body: ``422 {"statusCode": 422, "detail": [{"loc", "msg", "type"}]}``,
  every error of the path, then the query, then the body; a query parameter the route does not
  declare is a 422 too (``extra_forbidden``) once the declared ones are valid; a body whose
  content type is neither JSON nor absent is ``415``;
* the query string is read as API Gateway resolves it (``multiValueQueryStringParameters`` over
  ``queryStringParameters``): one value is the parameter, several are a list (refused by a
  scalar parameter);
* :class:`HttpError` raised by a route answers ``{"statusCode", "message"}`` with its status;
* with CORS configured, every answer to an allowed ``Origin`` carries the CORS headers.

What a route raises otherwise is the caller's (``Router.resolve`` raises it) unless
``errors`` maps it to an answer. Every answer goes through ``observe`` (correlation header,
metrics, the access log line) before its CORS headers are added.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from cryptosmarttrader.domain import jsonout

__all__ = [
    "REQUIRED",
    "Cors",
    "HttpError",
    "Param",
    "Request",
    "Response",
    "Route",
    "Router",
    "enum_query",
    "int_query",
    "literal_query",
    "str_param",
]

APPLICATION_JSON: Final = "application/json"
_SEGMENT: Final = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"  # one path segment, as Powertools'
_TEMPLATE_PARAM: Final = re.compile(r"\{(\w+)\}")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


class HttpError(Exception):
    """An answer ``{"statusCode": status, "message": message}`` (404, 401, 503...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Param:
    """A path or query parameter: its core schema (the runtime check) and, for the OpenAPI
    document, its Python type and the ``Path()`` / ``Query()`` keyword arguments."""

    name: str
    where: Literal["path", "query"]
    schema: cs.CoreSchema
    annotation: Any
    default: Any = REQUIRED
    constraints: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def validator(self) -> SchemaValidator:
        return SchemaValidator(self.schema)


def _kwargs(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def int_query(
    name: str, *, default: int, ge: int, le: int, description: str | None = None
) -> Param:
    return Param(name, "query", cs.int_schema(ge=ge, le=le), int, default,
                 _kwargs(ge=ge, le=le, description=description))  # fmt: skip


def str_param(
    name: str,
    where: Literal["path", "query"],
    *,
    pattern: str,
    max_length: int | None = None,
    default: Any = REQUIRED,
    description: str | None = None,
) -> Param:
    annotation: Any = str if default is REQUIRED else str | None
    schema = cs.str_schema(pattern=pattern, max_length=max_length)
    return Param(name, where, schema, annotation, default,
                 _kwargs(pattern=pattern, max_length=max_length, description=description))  # fmt: skip


def enum_query(name: str, enum: Any, *, description: str | None = None) -> Param:
    """An optional query parameter holding one member of a ``StrEnum`` (default None)."""
    members = list(enum.__members__.values())
    schema = cs.enum_schema(enum, members, sub_type="str")
    return Param(name, "query", schema, enum | None, None, _kwargs(description=description))


def literal_query(
    name: str, values: Sequence[str], annotation: Any, *, default: str, description: str
) -> Param:
    schema = cs.literal_schema(list(values))
    return Param(name, "query", schema, annotation, default, _kwargs(description=description))


@dataclass
class Response:
    """An answer: ``body`` is JSON-compatible, a pydantic model, or ``""`` (no content)."""

    status_code: int
    body: Any
    content_type: str | None = APPLICATION_JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """``method`` + ``path`` (API Gateway's resource form, ``/coins/{symbol}``) → ``endpoint``,
    called with the validated parameters by name (and the body as ``request``).

    ``body``: the pydantic model of the JSON body, returned by a function imported on the first
    request that needs it. ``summary``, ``tags``, ``security`` and ``responses`` are the
    operation's OpenAPI metadata (the document is built from this table, off the hot path)."""

    method: str
    path: str
    endpoint: Callable[..., Any]
    params: tuple[Param, ...] = ()
    body: Callable[[], Any] | None = None
    summary: str = ""
    tags: tuple[str, ...] = ()
    security: tuple[Mapping[str, Sequence[str]], ...] = ()
    responses: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @cached_property
    def regex(self) -> re.Pattern[str]:
        parts = _TEMPLATE_PARAM.split(self.path.rstrip("/"))  # literal, name, literal, ...
        pattern = "".join(
            f"(?P<{part}>{_SEGMENT})" if i % 2 else re.escape(part) for i, part in enumerate(parts)
        )
        return re.compile(f"^{pattern}/*$")

    @property
    def name(self) -> str:
        return self.endpoint.__name__


@dataclass(frozen=True)
class Cors:
    """CORS headers for one allowed origin (none for any other origin, or without ``Origin``)."""

    allow_origin: str
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int

    # what Powertools' CORSConfig always allows, with the configured headers
    _REQUIRED_HEADERS: tuple[str, ...] = (
        "Authorization", "Content-Type", "X-Amz-Date", "X-Api-Key", "X-Amz-Security-Token",
    )  # fmt: skip

    def headers_for(self, origin: str | None) -> dict[str, str]:
        if origin is None or origin != self.allow_origin:
            return {}
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Headers": ",".join(
                sorted({*self._REQUIRED_HEADERS, *self.allow_headers})
            ),
        }
        if self.expose_headers:
            headers["Access-Control-Expose-Headers"] = ",".join(self.expose_headers)
        headers["Access-Control-Max-Age"] = str(self.max_age)
        return headers


class _InvalidRequestError(Exception):
    def __init__(self, errors: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors
        self.status = status


@dataclass(frozen=True)
class Request:
    """The raw proxy event of the request being answered, with typed accessors."""

    event: Mapping[str, Any]

    def header(self, name: str) -> str | None:
        """A request header, case-insensitive (the first value of a repeated one)."""
        wanted = name.lower()
        for source in (self.event.get("multiValueHeaders"), self.event.get("headers")):
            if not source:
                continue
            for key, value in source.items():
                if key.lower() == wanted:
                    return str(value[0]) if isinstance(value, list) else value
            return None
        return None

    @property
    def request_context(self) -> Mapping[str, Any]:
        context: Mapping[str, Any] = self.event.get("requestContext") or {}
        return context

    @property
    def identity(self) -> Mapping[str, Any]:
        identity: Mapping[str, Any] = self.request_context.get("identity") or {}
        return identity

    @property
    def resource(self) -> str | None:
        resource: str | None = self.event.get("resource")
        return resource

    def query(self) -> dict[str, list[str]]:
        """The query string as API Gateway resolves it: the multi-value map over the single
        one (where a value may hold commas)."""
        single = {k: str(v).split(",") for k, v in (self.event.get("queryStringParameters") or {}).items()}  # fmt: skip
        multi = dict(self.event.get("multiValueQueryStringParameters") or {})
        return {**single, **multi}

    def content_type(self) -> str:
        headers = self.event.get("headers") or {}
        for key, value in headers.items():
            if key.lower() == "content-type" and value is not None:
                return str(value).strip()
        return ""

    def decoded_body(self) -> str | None:
        body: str | None = self.event.get("body")
        if self.event.get("isBase64Encoded") and body:
            return base64.b64decode(body.encode()).decode()
        return body


def _query_value(name: str, values: list[str], multi: Iterable[str]) -> Any:
    """Powertools' reading: commas of a single value are kept, one value is the value, and a
    repeated parameter is a list."""
    if len(values) > 1 and name not in multi and all(isinstance(v, str) for v in values):
        return ",".join(values)
    if len(values) == 1:
        return values[0]
    return values


def _errors(where: tuple[Any, ...], exc: Any) -> list[dict[str, Any]]:
    return [
        {"loc": [*where, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


Observe = Callable[[Request, Response, float], None]
ErrorMapper = Callable[[Exception], Response | None]
Invalid = Callable[[list[dict[str, Any]]], Response]


class Router:
    """Routes one proxy event to its route and answers in API Gateway's proxy response shape."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        observe: Observe,
        invalid: Invalid,
        errors: ErrorMapper,
        cors: Cors | None = None,
    ) -> None:
        self.routes = tuple(routes)
        self.cors = cors
        self._observe = observe
        self._invalid = invalid
        self._errors = errors
        self.current: Request | None = None

    @property
    def current_request(self) -> Request:
        if self.current is None:
            raise RuntimeError("no request is being answered")
        return self.current

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method and (found := route.regex.match(path)):
                return route, found.groupdict()
        return None

    def resolve(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """The proxy response to ``event`` (``context`` unused: the handler holds it)."""
        request = Request(event)
        self.current = request
        try:
            started = time.perf_counter()
            response = self._answer(request)
            self._observe(request, response, (time.perf_counter() - started) * 1000.0)
            if self.cors is not None:
                response.headers.update(self.cors.headers_for(request.header("origin")))
            return self._build(response)
        finally:
            self.current = None

    def _answer(self, request: Request) -> Response:
        method = str(request.event.get("httpMethod", "")).upper()
        matched = self.match(method, str(request.event.get("path", "")))
        if matched is None:
            if self.cors is not None and method == "OPTIONS":
                allowed = ",".join(sorted({"OPTIONS", *(r.method for r in self.routes)}))
                return Response(204, "", None, {"Access-Control-Allow-Methods": allowed})
            return Response(404, {"statusCode": 404, "message": "Not found"})
        route, path_values = matched
        try:
            arguments = self._arguments(route, request, path_values)
            result = route.endpoint(**arguments)
        except _InvalidRequestError as invalid:
            if invalid.status != 422:  # the errors' types only, as Powertools answered
                detail = [{"loc": e["loc"], "type": e["type"]} for e in invalid.errors]
                return Response(invalid.status, {"statusCode": invalid.status, "detail": detail})
            return self._invalid(invalid.errors)
        except HttpError as error:
            return Response(error.status, {"statusCode": error.status, "message": error.message})
        except Exception as exc:
            mapped = self._errors(exc)
            if mapped is None:
                raise
            return mapped
        return result if isinstance(result, Response) else Response(200, result)

    def _arguments(
        self, route: Route, request: Request, path_values: Mapping[str, str]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        query = request.query()
        multi = (request.event.get("multiValueQueryStringParameters") or {}).keys()
        for param in route.params:
            if param.where == "path":
                raw: Any = path_values.get(param.name)
            else:
                sent = query.get(param.name)
                raw = None if sent is None else _query_value(param.name, list(sent), multi)
            if raw is None:
                if param.default is REQUIRED:
                    errors.append({"loc": [param.where, param.name], "msg": "Field required",
                                   "type": "missing"})  # fmt: skip
                else:
                    values[param.name] = param.default
                continue
            try:
                values[param.name] = param.validator.validate_python(raw)
            except ValueError as exc:  # pydantic_core.ValidationError
                errors.extend(_errors((param.where, param.name), exc))
        if route.body is not None:
            body = self._body(route.body(), request, errors)
            if body is not None:
                values["request"] = body
        if errors:
            raise _InvalidRequestError(errors)
        declared = {p.name for p in route.params if p.where == "query"}
        unknown = sorted(set(query) - declared)
        if unknown:
            raise _InvalidRequestError(
                [
                    {"loc": ["query", name], "msg": "unknown query parameter",
                     "type": "extra_forbidden"}
                    for name in unknown
                ]
            )  # fmt: skip
        return values

    @staticmethod
    def _body(model: Any, request: Request, errors: list[dict[str, Any]]) -> Any:
        content_type = request.content_type()
        if content_type and not content_type.startswith(APPLICATION_JSON):
            raise _InvalidRequestError(
                [{"loc": ["body"], "msg": "unsupported content type",
                  "type": "unsupported_content_type"}],
                status=415,
            )  # fmt: skip
        try:
            text = request.decoded_body()
        except (UnicodeDecodeError, binascii.Error):
            raise _InvalidRequestError(
                [{"loc": ["body"], "msg": "body is not UTF-8 JSON", "type": "json_invalid"}]
            ) from None
        if not text:
            errors.append({"loc": ["body"], "msg": "Field required", "type": "missing"})
            return None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _InvalidRequestError(
                [{"loc": ["body", exc.pos], "msg": "JSON decode error", "type": "json_invalid"}]
            ) from None
        if document is None:
            errors.append({"loc": ["body"], "msg": "Field required", "type": "missing"})
            return None
        try:
            return model.model_validate(document, from_attributes=True)
        except ValueError as exc:  # pydantic.ValidationError
            errors.extend(_errors(("body",), exc))
            return None

    @staticmethod
    def _build(response: Response) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if response.content_type is not None:
            headers["Content-Type"] = response.content_type
        headers.update(response.headers)
        body = response.body
        if response.content_type == APPLICATION_JSON and not isinstance(body, str):
            if hasattr(body, "model_dump"):
                body = body.model_dump(mode="json", by_alias=True)
            body = jsonout.dumps(body, separators=(",", ":"))
        return {
            "statusCode": response.status_code,
            "body": body,
            "isBase64Encoded": False,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
        }

"""One error mechanism for every dialect: a route class that turns Podium errors (and
FastAPI's validation errors) into the dialect's own error shape, and, for errors raised before
any route is reached, the dialect a path belongs to. Also the JSON response every dialect's
routes answer with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from podium import jsontext
from podium.errors import BadRequest, MethodNotAllowed, NotFound, PodiumError, Unprocessable

ErrorBody = Callable[[PodiumError], dict[str, Any]]
Model = TypeVar("Model", bound=BaseModel)


class JSONText(JSONResponse):
    """A JSON response written by `jsontext` (orjson): the standard library's encoder took 7 of
    a run answer's 9 us. Its text is the same, but NaN is written as null, not refused."""

    def render(self, content: Any) -> bytes:
        return jsontext.dumps(content).encode()


class Dialect:
    """A dialect's name, its error body, and the status its validation errors get."""

    def __init__(self, name: str, body: ErrorBody, validation: type[PodiumError] = BadRequest) -> None:
        self.name = name
        self.body = body
        self.validation = validation

    def error(self, exc: PodiumError) -> JSONText:
        headers = {}
        if exc.extra.get("retry_after") is not None:
            headers["Retry-After"] = str(max(1, round(float(exc.extra["retry_after"]))))
        return JSONText(self.body(exc), status_code=exc.status, headers=headers)

    def invalid(self, exc: RequestValidationError) -> PodiumError:
        return self.validation(describe_validation(exc.errors()))

    def router(self, **kwargs: Any) -> APIRouter:
        dialect = self

        class Route(APIRoute):
            """FastAPI's route, with every error it meets rendered in this dialect's shape."""

            def get_route_handler(self) -> Callable[[Request], Any]:
                handler = _direct(self) or super().get_route_handler()

                async def guarded(request: Request) -> Response:
                    try:
                        return await handler(request)
                    except PodiumError as exc:
                        return dialect.error(exc)
                    except RequestValidationError as exc:
                        return dialect.error(dialect.invalid(exc))
                    except HTTPException as exc:
                        # FastAPI wraps failures while reading the body (e.g. our size limit).
                        cause = exc.__cause__
                        return dialect.error(cause if isinstance(cause, PodiumError) else _from_http(exc))

                return guarded

        return APIRouter(route_class=Route, default_response_class=JSONText, **kwargs)


def _direct(route: APIRoute) -> Callable[[Request], Awaitable[Response]] | None:
    """For an endpoint that takes the Request and string path parameters alone, a handler that
    calls it directly, without FastAPI's per-request dependency solving: that cost more CPU than
    the rest of the framework together (97 against 31 us a request in-process; bench/RESULTS.md,
    scenario 1). The hot run endpoints are written so; they parse their body with `parse_body`."""
    d = route.dependant
    if (d.request_param_name is None or d.query_params or d.header_params or d.cookie_params
            or d.body_params or d.dependencies or d.websocket_param_name or d.background_tasks_param_name
            or route.response_model is not None or any(p.field_info.annotation is not str for p in d.path_params)):
        return None
    endpoint, request_param, status = route.endpoint, d.request_param_name, route.status_code or 200

    async def handler(request: Request) -> Response:
        result = await endpoint(**request.path_params, **{request_param: request})
        return result if isinstance(result, Response) else JSONText(jsonable_encoder(result), status)

    return handler


async def parse_body(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as `model`; invalid input raises the RequestValidationError that
    FastAPI's own parsing would, so the dialect renders it the same way."""
    try:
        raw = await request.body()
    except ClientDisconnect:  # FastAPI's own parsing answers it with a 400 nobody reads, not a traceback
        raise BadRequest("the client closed the connection before sending the whole body") from None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(in_body(exc)) from None


def in_body(exc: ValidationError) -> list[dict[str, Any]]:
    """A model's errors located under `body`, as FastAPI locates a request body's: without it,
    `describe_validation` would take a field named `query` for the query string."""
    return [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body that the endpoint parses itself with `parse_body`."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema()}}}}


def _from_http(exc: HTTPException) -> PodiumError:
    error = PodiumError(str(exc.detail))
    error.status = exc.status_code
    error.code = "BAD_REQUEST" if exc.status_code == 400 else f"HTTP_{exc.status_code}"
    return error


def describe_validation(errors: Any) -> str:
    """FastAPI's error list as one sentence a person can act on."""
    parts = []
    for error in list(errors)[:3]:
        loc = [str(p) for p in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where the value came from; the field name is what helps
        if error.get("type") == "json_invalid":
            parts.append("request body is not valid JSON")
        elif error.get("type") == "missing":
            parts.append(f"missing field: {'.'.join(loc) or 'body'}")
        else:
            parts.append(f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def plain_error(exc: PodiumError) -> dict[str, Any]:
    return {"error": exc.message}


def coded_error(exc: PodiumError) -> dict[str, Any]:
    return {"error": exc.message, "code": str(exc.extra.get("code", exc.code))}


def detail_error(exc: PodiumError) -> dict[str, Any]:
    return {"detail": exc.message}


_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 405: "invalid_request_error", 408: "timeout",
                 413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
                 503: "service_unavailable"}


def openai_error(exc: PodiumError) -> dict[str, Any]:
    return {"error": {"message": exc.message, "type": _OPENAI_TYPES.get(exc.status, "server_error"),
                      "param": None, "code": exc.code.lower()}}


CHAT = Dialect("chat", coded_error)
WORK = Dialect("work", plain_error)
RUNTIME = Dialect("runtime", detail_error, validation=Unprocessable)
GATEWAY = Dialect("gateway", plain_error)
CONSOLE = Dialect("console", plain_error)
OPENAI = Dialect("openai", openai_error)

_GATEWAY = ("/v1/query", "/v1/stream", "/v1/triggers")
_OPENAI = ("/v1/chat/completions", "/v1/models")
_CHAT = ("/chat", "/agents", "/health")
_WORK = ("/api/tasks", "/api/sessions", "/api/projects")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def dialect_for(path: str) -> Dialect:
    """The dialect a path belongs to, for errors raised before a dialect's route is reached
    (the access gate's refusals, routing's 404 and 405)."""
    if _under(path, _OPENAI):
        return OPENAI
    if _under(path, _GATEWAY):
        return GATEWAY
    if path.startswith("/v1/"):
        return RUNTIME
    if _under(path, _CHAT):
        return CHAT
    if _under(path, _WORK) or path == "/":
        return WORK
    return CONSOLE


async def routing_error(request: Request, exc: HTTPException) -> Response:
    """Routing's own 404 (no such path) and 405 (no such method), in the path's dialect: every
    other error is raised inside a dialect's route and rendered there."""
    path = request.url.path[:200]
    if exc.status_code == 404:
        error: PodiumError = NotFound(f"no such path: {path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {path}")
    else:
        error = _from_http(exc)
    response = dialect_for(request.url.path).error(error)
    response.headers.update(exc.headers or {})  # 405's Allow: the methods the path takes
    return response

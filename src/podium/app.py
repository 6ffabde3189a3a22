"""The ASGI application: the Core in the lifespan, the dialects as routers."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException

from podium import __version__, heap
from podium.api import admin, chat, events, gateway, memory, observability, observatory, openai, operator, rag, runtime, triggers, work
from podium.api._access import AccessGate
from podium.api._dialect import routing_error
from podium.api._limits import BodyLimit
from podium.core import Core
from podium.settings import Settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Every dialect's way to start a run: the hot paths.
RUN_PATHS = frozenset({"/v1/agents/{name}/run", "/chat", "/v1/chat/completions", "/v1/query", "/v1/stream"})


def create_app(settings: Settings) -> FastAPI:
    """Build the app; the Core is created and started when the server starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = Core(settings)
        await core.start()
        app.state.core = core
        heap.settle()
        await core.warm_up()
        try:
            yield
        finally:
            await core.stop()
            heap.thaw()

    # Podium traces its runs itself (runtime/tracing.py) and sets no global OpenTelemetry
    # provider; FastAPI's own request telemetry, off here, looked the three global providers
    # up on every request only to find them unset.
    app = FastAPI(title="Podium", version=__version__, lifespan=lifespan,
                  exception_handlers={HTTPException: routing_error},
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    # The dialects' routes join the app's own list (their paths and tags are set where they are
    # declared, so the OpenAPI document is the same as with include_router). FastAPI >= 0.137
    # wraps each included router in a lazily matched layer that cost ~20 us of CPU per request
    # in-process and ~30 us under load (bench/RESULTS.md, scenario 1).
    for router in (*(m.router for m in (chat, openai, runtime, gateway, work, events, triggers, admin,
                                        observability, operator, observatory, rag, memory)),
                   observability.prometheus):
        app.router.routes.extend(router.routes)
    # Starlette tries routes in order, ~1 us each: the routes that start runs go first (a run
    # walked 16 routes before its own; 449 against 468 us of CPU a run at c=64, bench scenario 1).
    # No route before them matches their paths, so moving them changes what is tried, not what
    # answers.
    app.router.routes.sort(key=lambda route: getattr(route, "path", None) not in RUN_PATHS)
    # Added before CORS so that CORS wraps it: refusals still carry the CORS headers.
    app.add_middleware(AccessGate)
    origins = settings.cors.origins or (["*"] if is_loopback(settings.host) else [])
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app

"""The console dialect's operator routes (seed 5): health, configuration, logs, costs and
usage statistics, and the model catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Query

from podium import __version__
from podium.api._deps import CoreDep
from podium.api._dialect import CONSOLE
from podium.errors import BadRequest

router = CONSOLE.router(prefix="/api", tags=["console"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/health")
async def health(core: CoreDep):
    return {"status": "ok", "uptime": int(core.uptime), "version": __version__}


@router.get("/config")
async def get_config(core: CoreDep):
    return core.config_service.current()


@router.put("/config")
async def put_config(core: CoreDep, body: Annotated[Any, Body()]):
    return core.config_service.update(body)


@router.get("/config/capabilities")
async def capabilities(core: CoreDep):
    return core.config_service.capabilities()


@router.get("/config/status")
async def config_status(core: CoreDep):
    return core.config_service.status()


def since_ms(since: str | None) -> int | None:
    """Epoch milliseconds, or an ISO-8601 time."""
    if since is None:
        return None
    if since.isdigit():
        return int(since)
    try:
        return int(datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as exc:
        raise BadRequest("since must be epoch milliseconds or an ISO-8601 time") from exc


@router.get("/logs")
async def logs(core: CoreDep, level: str | None = None, since: str | None = None, limit: Limit = 200):
    entries = core.logs.query(level, since_ms(since), limit)
    return {"logs": entries, "count": len(entries), "file": str(core.logs.path)}


@router.get("/stats/costs")
async def costs(core: CoreDep, period: str = "30d", limit: Limit = 50):
    return await core.stats.costs(period, limit)


@router.get("/stats/transactions")
async def transactions(core: CoreDep, limit: Limit = 50):
    return await core.stats.transactions(limit)


@router.get("/stats/cache")
async def cache(core: CoreDep, period: str = "all"):
    return await core.stats.cache(period)


@router.get("/stats/efficiency")
async def efficiency(core: CoreDep, period: str = "7d", model: str | None = None):
    return await core.stats.efficiency(period, model)


@router.get("/stats/timeseries")
async def timeseries(core: CoreDep, period: str = "24h", bucket: str = "hour"):
    return await core.stats.timeseries(period, bucket)


@router.get("/stats/capacity")
async def capacity(core: CoreDep):
    return await core.stats.capacity()


@router.get("/models/available")
async def models_available(core: CoreDep):
    return core.stats.models_available()


@router.get("/models/selections")
async def model_selections(core: CoreDep, limit: Limit = 100):
    return await core.stats.model_selections(limit)

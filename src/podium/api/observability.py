"""The runtime dialect's observability routes (seed 3): traces, metrics and system health,
plus the same metrics for Prometheus at `GET /metrics`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from podium.api._deps import CoreDep
from podium.api._dialect import RUNTIME
from podium.errors import NotFound

router = RUNTIME.router(prefix="/v1", tags=["observability"])
prometheus = APIRouter(tags=["observability"])


def span_body(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "span_id": row["span_id"], "parent_id": row["parent_id"],
            "start_ms": round(row["start_ms"], 3), "duration_ms": round(row["duration_ms"], 3),
            "attributes": row["attributes"] or {}, "status": row["status"]}


def trace_body(spans: list[dict[str, Any]]) -> dict[str, Any]:
    root = next((s for s in spans if s["name"] == "agent.run"), spans[0])
    attributes = root["attributes"] or {}
    return {"trace_id": root["trace_id"], "agent": root["agent"], "session_id": root["session_id"],
            "turn_id": attributes.get("turn_id"), "status": root["status"], "start_ms": round(root["start_ms"], 3),
            "duration_ms": round(root["duration_ms"], 3), "spans": [span_body(s) for s in spans]}


@router.get("/traces/")
async def list_traces(core: CoreDep, agent: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return {"traces": [trace_body(t) for t in await core.tracing.recent(limit, agent)]}


@router.get("/traces/{trace_id}")
async def get_trace(trace_id: str, core: CoreDep):
    spans = await core.tracing.get(trace_id)
    if not spans:
        raise NotFound(f"trace {trace_id!r} not found")
    return trace_body(spans)


@router.get("/metrics/")
async def get_metrics(core: CoreDep):
    return core.metrics.snapshot()


@router.post("/metrics/reset")
async def reset_metrics(core: CoreDep):
    core.metrics.reset()
    return {"status": "reset"}


@router.get("/system/status")
async def system_status(core: CoreDep):
    return await core.system.status()


@router.get("/system/doctor")
async def system_doctor(core: CoreDep):
    return await core.system.doctor()


@prometheus.get("/metrics", include_in_schema=False)
async def prometheus_metrics(core: CoreDep):
    return Response(core.metrics.prometheus(), media_type=CONTENT_TYPE_LATEST)

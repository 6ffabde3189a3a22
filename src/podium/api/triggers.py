"""Durable triggers in the gateway dialect (seed 4): `POST /v1/triggers` answers 202 at once."""

from __future__ import annotations

from fastapi import Header

from pydantic import BaseModel, ConfigDict, Field

from podium.api._deps import CoreDep
from podium.api._dialect import GATEWAY

router = GATEWAY.router(prefix="/v1", tags=["gateway"])


class TriggerRequest(BaseModel):
    """A trigger: the agent to run and the input it is given."""

    model_config = ConfigDict(strict=True, extra="ignore")

    target_agent: str = Field(min_length=1, max_length=64)
    input: str = Field(min_length=1)


@router.post("/triggers", status_code=202)
async def submit(body: TriggerRequest, core: CoreDep,
                 idempotency_key: str | None = Header(None, max_length=200),
                 traceparent: str | None = Header(None, max_length=64)):
    """Store the trigger and answer; a background worker runs it."""
    return await core.triggers.submit(body.target_agent, body.input, idempotency_key=idempotency_key,
                                      traceparent=traceparent)


@router.get("/triggers/{event_id}")
async def status(event_id: str, core: CoreDep):
    """pending | running | completed (with `result`) | failed (with `error`)."""
    return await core.triggers.get(event_id)

"""Console routes (seed 5) for resilience and access: circuit breakers, provider keys, approvals."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from podium.api._deps import CoreDep
from podium.api._dialect import CONSOLE

router = CONSOLE.router(prefix="/api", tags=["console"])


class KeyRequest(BaseModel):
    """A provider's API key, stored encrypted."""

    model_config = ConfigDict(strict=True, extra="forbid")

    key: str = Field(min_length=1, max_length=4096, description="The provider's API key; never returned.")


class Decision(BaseModel):
    """An approval's decision, with an optional reason."""

    model_config = ConfigDict(strict=True, extra="forbid")

    reason: str | None = Field(None, max_length=2000)


@router.get("/breaker/status")
async def breaker_status(core: CoreDep):
    return {"breakers": core.loop.router.breakers.status()}


@router.post("/breaker/reset/{provider}")
async def breaker_reset(provider: str, core: CoreDep):
    return {"provider": provider, "reset": core.loop.router.breakers.reset(provider)}


@router.put("/providers/{name}/key")
async def set_provider_key(name: str, body: KeyRequest, core: CoreDep):
    return await core.provider_keys.set(name, body.key)


@router.delete("/providers/{name}/key")
async def remove_provider_key(name: str, core: CoreDep):
    return await core.provider_keys.remove(name)


@router.get("/approvals")
async def list_approvals(core: CoreDep, status: str = "pending"):
    return await core.approvals.list(None if status == "all" else status)


@router.post("/approvals/{approval_id}/approve")
async def approve(approval_id: str, core: CoreDep, body: Decision | None = None):
    return await core.approvals.decide(approval_id, True, body.reason if body else None)


@router.post("/approvals/{approval_id}/deny")
async def deny(approval_id: str, core: CoreDep, body: Decision | None = None):
    return await core.approvals.decide(approval_id, False, body.reason if body else None)

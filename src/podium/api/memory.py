"""Console dialect (seed 5) memory routes under `/api/memory`: working notes, episodic
events, semantic facts by category, and full-text search. Errors are `{"error": msg}`."""

from __future__ import annotations

from fastapi import Query

from podium.api._deps import CoreDep
from podium.api._dialect import CONSOLE

router = CONSOLE.router(prefix="/api/memory", tags=["console"])


@router.get("/working")
async def working(core: CoreDep, limit: int = Query(100, ge=1, le=1000)):
    entries = await core.memory.working(limit=limit)
    return {"entries": entries, "count": len(entries)}


@router.get("/working/{session_id}")
async def working_session(session_id: str, core: CoreDep, limit: int = Query(100, ge=1, le=1000)):
    entries = await core.memory.working(session_id, limit=limit)
    return {"session_id": session_id, "entries": entries, "count": len(entries)}


@router.get("/episodic")
async def episodic(core: CoreDep, agent: str | None = None, session_id: str | None = None,
                   limit: int = Query(50, ge=1, le=500)):
    events = await core.memory.episodic(agent, session_id, limit)
    return {"events": events, "count": len(events)}


@router.get("/semantic")
async def semantic(core: CoreDep, limit: int = Query(100, ge=1, le=1000)):
    entries = await core.memory.facts(limit=limit)
    return {"entries": entries, "count": len(entries)}


@router.get("/semantic/categories")
async def categories(core: CoreDep):
    found = await core.memory.categories()
    return {"categories": found, "count": len(found)}


@router.get("/semantic/{category}")
async def by_category(category: str, core: CoreDep, limit: int = Query(100, ge=1, le=1000)):
    entries = await core.memory.facts(category, limit=limit)
    return {"category": category.lower(), "entries": entries, "count": len(entries)}


@router.get("/search")
async def search(core: CoreDep, q: str = Query(min_length=1, max_length=1000),
                 limit: int = Query(20, ge=1, le=200)):
    results = await core.memory.search(q, limit)
    return {"query": q, "results": results, "count": len(results)}

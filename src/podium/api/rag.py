"""Runtime dialect (seed 3) routes for knowledge and semantic memory: RAG collections under
`/v1/rag` and `GET /v1/memory/{agent}/semantic`. Errors are `{"detail": msg}`; invalid
bodies are 422."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from podium.api._deps import CoreDep
from podium.api._dialect import RUNTIME

router = RUNTIME.router(prefix="/v1", tags=["runtime"])


class Document(BaseModel):
    """One document to ingest: its text and metadata kept with each chunk."""

    model_config = ConfigDict(extra="forbid")

    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestRequest(BaseModel):
    """Documents to chunk, embed and store in a collection."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field(min_length=1, max_length=128)
    documents: list[Document]
    chunk_size: int = Field(512, ge=1, le=100_000)
    chunk_overlap: int = Field(50, ge=0)


class QueryRequest(BaseModel):
    """A search of a collection: the chunks nearest in meaning to `query`."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field(min_length=1, max_length=128)
    query: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=100)
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)
    mode: Literal["vector", "hybrid"] = "vector"


@router.post("/rag/ingest")
async def ingest(body: IngestRequest, core: CoreDep):
    return await core.knowledge.ingest(body.collection, [d.model_dump() for d in body.documents],
                                       body.chunk_size, body.chunk_overlap)


@router.post("/rag/query")
async def query(body: QueryRequest, core: CoreDep):
    return {"results": await core.knowledge.query(body.collection, body.query, body.top_k,
                                                  body.score_threshold, body.mode)}


@router.get("/rag/collections")
async def collections(core: CoreDep):
    found = await core.knowledge.collections()
    return {"collections": found, "count": len(found)}


@router.delete("/rag/collections/{name}")
async def delete_collection(name: str, core: CoreDep):
    return await core.knowledge.delete(name)


@router.get("/memory/{agent}/semantic")
async def semantic(agent: str, core: CoreDep, query: str = Query(min_length=1),
                   top_k: int = Query(5, ge=1, le=100)):
    core.agents.get(agent)
    return {"results": await core.memory.semantic_search(agent, query, top_k)}

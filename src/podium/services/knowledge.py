"""RAG: collections of chunked, embedded documents, queried by meaning (and optionally words).

Vectors live in the database; each collection's vectors are also kept as one float32 matrix
in a bounded in-memory cache, so a query is one embedding plus one matrix-vector product,
whatever the collection's size. Ingest and delete invalidate the collection's entry.

Scores are cosine similarities clamped into [0, 1]: a negative cosine (an unrelated or
opposite text) scores 0. Hybrid mode fuses the vector ranking with SQLite FTS5 BM25 by
reciprocal rank fusion (k = 60); the score shown is still the cosine, so `score_threshold`
means the same in both modes.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from podium.bus import EventBus
from podium.errors import Conflict, NotFound, Unprocessable
from podium.runtime.chunking import chunk_text, check
from podium.runtime.embeddings.base import Embedder
from podium.services.vectors import Loaded, MatrixCache, cosines, run_ranking, top_matches
from podium.store.fulltext import keywords
from podium.store.knowledge import KnowledgeStore

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RRF_K = 60


class KnowledgeService:
    """Ingest, query, list and delete RAG collections."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder, cache: MatrixCache,
                 bus: EventBus | None = None) -> None:
        self.store = store
        self.bus = bus
        self.embedder = embedder
        self.cache = cache

    async def ingest(self, collection: str, documents: list[dict[str, Any]], chunk_size: int = 512,
                     chunk_overlap: int = 50) -> dict[str, Any]:
        """Chunk, embed and store documents; the whole ingest is one transaction."""
        _check_name(collection)
        check(chunk_size, chunk_overlap)
        if not documents:
            raise Unprocessable("documents must not be empty")
        chunks: list[dict[str, Any]] = []
        for number, document in enumerate(documents):
            pieces = chunk_text(document.get("text") or "", chunk_size, chunk_overlap)
            if not pieces:
                raise Unprocessable(f"documents[{number}].text is empty")
            chunks += [{"document": number, "position": i, "text": p, "meta": document.get("metadata") or {}}
                       for i, p in enumerate(pieces)]
        existing = await self.store.get_collection(collection)
        if existing is not None and existing["embedder"] != self.embedder.name:
            raise Conflict(f"collection {collection!r} was embedded with {existing['embedder']}, "
                           f"the server now uses {self.embedder.name}; delete and re-ingest it")
        vectors = await self.embedder.embed([c["text"] for c in chunks])
        # Collections keep numbering documents where they left off, so metadata stays per document.
        offset = (existing or {}).get("documents", 0)
        for chunk in chunks:
            chunk["document"] += offset
        await self.store.add(collection, self.embedder.name, vectors.shape[1], len(documents), chunks, vectors)
        self.cache.invalidate(f"rag:{collection}")
        answer = {"collection": collection, "documents_ingested": len(documents), "chunks_created": len(chunks)}
        if self.bus is not None:
            self.bus.publish("rag:ingested", answer)
        return answer

    async def query(self, collection: str, query: str, top_k: int = 5, score_threshold: float = 0.0,
                    mode: str = "vector") -> list[dict[str, Any]]:
        """The best chunks for `query`: `{text, score, metadata}`, best first."""
        info = await self.store.get_collection(collection)
        if info is None:
            raise NotFound(f"collection {collection!r} not found", code="COLLECTION_NOT_FOUND")
        if not query.strip():
            raise Unprocessable("query must not be empty")
        # Every ingest moves the collection's row on (documents, updated_at), and a collection
        # made again has a new created_at: so a change through another server is seen here too.
        version = (info["created_at"], info["updated_at"], info["documents"])
        ids, _, vectors = await self.cache.get(f"rag:{collection}",
                                               lambda: self._load(collection, info["dimension"]), version)
        if info["embedder"] != self.embedder.name:
            raise Conflict(f"collection {collection!r} was embedded with {info['embedder']}, "
                           f"the server now uses {self.embedder.name}; delete and re-ingest it")
        vector = (await self.embedder.embed([query]))[0]
        if mode == "hybrid":
            ranked = await self._hybrid(collection, query, ids, vectors, vector, top_k)
        else:
            rows, scores = await run_ranking(top_matches, vectors, vector, top_k)
            ranked = [(int(ids[r]), float(s)) for r, s in zip(rows, scores, strict=True)]
        ranked = [(i, s) for i, s in ranked if s >= score_threshold]
        found = await self.store.chunks([i for i, _ in ranked])
        return [{"text": found[i]["text"], "score": round(s, 6), "metadata": found[i]["metadata"]}
                for i, s in ranked if i in found]

    async def _load(self, collection: str, dimension: int) -> Loaded:
        ids, vectors = await self.store.matrix(collection, dimension)
        return ids, [], vectors

    async def _hybrid(self, collection: str, query: str, ids: np.ndarray, vectors: np.ndarray,
                      vector: np.ndarray, top_k: int) -> list[tuple[int, float]]:
        """Reciprocal rank fusion of the vector and BM25 rankings; scores stay cosines."""
        depth = max(top_k * 4, 50)
        rows, _ = await run_ranking(top_matches, vectors, vector, depth)
        vector_ranked = [int(ids[r]) for r in rows]
        words = keywords(query, drop_common=True)
        keyword_ranked = await self.store.keyword_ranks(collection, words, depth) if words else []
        fused: dict[int, float] = {}
        for ranking in (vector_ranked, keyword_ranked):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        # Ids are sorted (the matrix is loaded in id order); a chunk the matrix lacks is skipped.
        order = np.array(sorted(fused, key=lambda i: -fused[i]), dtype=np.int64)
        if len(order) == 0 or len(ids) == 0:
            return []
        positions = np.searchsorted(ids, order)
        known = (positions < len(ids)) & (ids[np.minimum(positions, len(ids) - 1)] == order)
        order, positions = order[known][:top_k], positions[known][:top_k]
        scores = np.clip(cosines(vectors[positions], vector), 0.0, 1.0)
        return [(int(i), float(c)) for i, c in zip(order, scores, strict=True)]

    async def has_collections(self) -> bool:
        """Whether any collection exists (without counting chunks, as `collections` does)."""
        return await self.store.has_collections()

    async def collections(self) -> list[dict[str, Any]]:
        return [{"name": c["name"], "documents": c["documents"], "chunks": c["chunks"],
                 "embedder": c["embedder"], "dimension": c["dimension"],
                 "created_at": c["created_at"], "updated_at": c["updated_at"]}
                for c in await self.store.list_collections()]

    async def delete(self, collection: str) -> dict[str, Any]:
        if await self.store.get_collection(collection) is None:
            raise NotFound(f"collection {collection!r} not found", code="COLLECTION_NOT_FOUND")
        removed = await self.store.delete_collection(collection)
        self.cache.invalidate(f"rag:{collection}")
        if self.bus is not None:
            self.bus.publish("rag:deleted", {"collection": collection})
        return {"status": "deleted", "collection": collection, "chunks_deleted": removed}


def _check_name(name: str) -> None:
    if not COLLECTION_NAME.match(name):
        raise Unprocessable("collection must be 1-128 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")

"""RAG collections and their chunks; each chunk's vector is a float32 BLOB in the same row.

Keeping vectors in the database (not a side file) means a collection cannot drift from its
chunks: one transaction writes both. Chunk text is indexed for hybrid retrieval: on SQLite by
an external-content FTS5 table kept in step by triggers (migration 0003), on PostgreSQL by a
GIN text-search index (migration 0007).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from podium.ids import now_ms
from podium.store.db import Database
from podium.store.fulltext import PG_VECTOR, fts_match, pg_tsquery
from podium.store.tables import metadata

rag_collections = Table(
    "rag_collections",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("embedder", String(200), nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("documents", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

rag_chunks = Table(
    "rag_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("collection", String(128), ForeignKey("rag_collections.name", ondelete="CASCADE"), nullable=False),
    Column("document", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("meta", JSON),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_rag_chunks_collection", "collection", "id"),
)


def vectors_from(blobs: list[bytes], dimension: int) -> np.ndarray:
    """BLOB rows back into one (n, dimension) float32 matrix, without per-row copies."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)


class KnowledgeStore:
    """Reads and writes collections and chunks."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_collection(self, name: str) -> dict[str, Any] | None:
        query = select(rag_collections).where(rag_collections.c.name == name)
        row = await self.db.row(query)
        return dict(row._mapping) if row else None

    async def add(self, name: str, embedder: str, dimension: int, documents: int,
                  chunks: list[dict[str, Any]], vectors: np.ndarray) -> None:
        """Create or extend a collection with its chunks, in one transaction."""
        now = now_ms()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)

        def write(conn: Connection) -> None:
            row = conn.execute(select(rag_collections.c.documents)
                               .where(rag_collections.c.name == name)).first()
            if row is None:
                conn.execute(rag_collections.insert().values(
                    name=name, embedder=embedder, dimension=dimension, documents=documents,
                    created_at=now, updated_at=now))
            else:
                conn.execute(rag_collections.update().where(rag_collections.c.name == name)
                             .values(documents=row.documents + documents, updated_at=now))
            conn.execute(rag_chunks.insert(), [
                {**chunk, "collection": name, "vector": vectors[i].tobytes(), "created_at": now}
                for i, chunk in enumerate(chunks)])
        await self.db.write(write)

    async def matrix(self, name: str, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        """Every chunk id of a collection and its vectors, in id order."""
        query = (select(rag_chunks.c.id, rag_chunks.c.vector)
                 .where(rag_chunks.c.collection == name).order_by(rag_chunks.c.id))
        rows = await self.db.rows(query)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, vectors_from([r[1] for r in rows], dimension)

    async def chunks(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        query = select(rag_chunks.c.id, rag_chunks.c.text, rag_chunks.c.meta).where(rag_chunks.c.id.in_(ids))
        rows = await self.db.rows(query)
        return {r.id: {"text": r.text, "metadata": r.meta or {}} for r in rows}

    async def keyword_ranks(self, name: str, words: list[str], limit: int) -> list[int]:
        """Chunk ids matching any of `words`, best first: BM25 on SQLite (FTS5), ts_rank on
        PostgreSQL; [] on an SQLite without FTS5."""
        if not self.db.is_sqlite:
            expression, params = pg_tsquery(words)
            query = text(f"WITH q AS (SELECT {expression} AS q) SELECT c.id FROM rag_chunks c, q "
                         f"WHERE c.collection = :name AND c.{PG_VECTOR} @@ q.q "
                         f"ORDER BY ts_rank(c.{PG_VECTOR}, q.q) DESC, c.id LIMIT :limit")
        else:
            query = text("SELECT c.id FROM rag_chunks_fts f JOIN rag_chunks c ON c.id = f.rowid "
                         "WHERE rag_chunks_fts MATCH :match AND c.collection = :name "
                         "ORDER BY bm25(rag_chunks_fts) LIMIT :limit")
            params = {"match": fts_match(words)}
        try:
            rows = await self.db.rows(query, {**params, "name": name, "limit": limit})
        except OperationalError:  # an SQLite without FTS5 (see migration 0003): vectors alone
            return []
        return [r[0] for r in rows]

    async def has_collections(self) -> bool:
        return await self.db.row(select(rag_collections.c.name).limit(1)) is not None

    async def list_collections(self) -> list[dict[str, Any]]:
        counts = (select(rag_chunks.c.collection, func.count().label("chunks"))
                  .group_by(rag_chunks.c.collection).subquery())
        query = (select(rag_collections, func.coalesce(counts.c.chunks, 0).label("chunks"))
                 .select_from(rag_collections.outerjoin(counts, counts.c.collection == rag_collections.c.name))
                 .order_by(rag_collections.c.name))
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def delete_collection(self, name: str) -> int:
        """Remove a collection and its chunks; the number of chunks removed."""
        def write(conn: Connection) -> int:
            removed = conn.execute(delete(rag_chunks).where(rag_chunks.c.collection == name)).rowcount
            conn.execute(delete(rag_collections).where(rag_collections.c.name == name))
            return removed or 0
        return await self.db.write(write)

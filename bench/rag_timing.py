"""Timing of the RAG query path at 10k and 100k chunks (not a test: numbers, no assertions).

    .venv/bin/python bench/rag_timing.py [sizes...]     # default: 10000 100000

Random unit vectors are inserted directly through the store (no embedding at ingest), then
queries run through KnowledgeService.query: once with a fixed query vector (retrieval only:
cache, one matrix-vector product, chunk fetch) and once with the local model embedding the
query text (what a client sees). Also measures the local embedder's texts per second.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from podium.runtime.embeddings.base import normalise
from podium.runtime.embeddings.local import LocalEmbedder
from podium.services.knowledge import KnowledgeService
from podium.services.vectors import MatrixCache
from podium.store.db import Database
from podium.store.knowledge import KnowledgeStore

DIM = 384


class FixedEmbedder:
    """Gives one random unit vector per text: isolates retrieval from embedding."""

    name = LocalEmbedder.name
    available = True

    async def embed(self, texts: list[str]) -> np.ndarray:
        return normalise(np.random.default_rng(len(texts)).standard_normal((len(texts), DIM)))

    async def close(self) -> None:
        return None


async def fill(store: KnowledgeStore, name: str, size: int) -> float:
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    for start in range(0, size, 5000):
        n = min(5000, size - start)
        chunks = [{"document": start + i, "position": 0, "text": f"chunk {start + i} " + "lorem ipsum " * 20,
                   "meta": {"n": start + i}} for i in range(n)]
        await store.add(name, LocalEmbedder.name, DIM, n, chunks, normalise(rng.standard_normal((n, DIM))))
    return time.perf_counter() - started


async def timed(service: KnowledgeService, name: str, repeats: int) -> tuple[float, float, float]:
    first = time.perf_counter()
    await service.query(name, "warm up", top_k=5)  # loads the matrix into the cache
    cold = (time.perf_counter() - first) * 1000
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        await service.query(name, f"question number {i}", top_k=5)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return cold, statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await db.migrate()
        store = KnowledgeStore(db)
        local = LocalEmbedder()
        await local.embed(["load the model"])
        texts = [f"A short sentence number {i} about subject {i % 13}." for i in range(512)]
        started = time.perf_counter()
        await local.embed(texts)
        print(f"local embedder: {len(texts) / (time.perf_counter() - started):.0f} short texts/s (one batch)")
        for size in sizes:
            seconds = await fill(store, f"c{size}", size)
            print(f"{size} chunks inserted in {seconds:.1f}s")
            for label, embedder in (("retrieval only", FixedEmbedder()), ("with local embedding", local)):
                service = KnowledgeService(store, embedder, MatrixCache(1024 * 1024 * 1024))
                cold, p50, p95 = await timed(service, f"c{size}", 50)
                print(f"  {label:22} first query {cold:7.1f} ms, then p50 {p50:6.2f} ms, p95 {p95:6.2f} ms")
        await local.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [10_000, 100_000]))

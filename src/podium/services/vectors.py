"""Vector matrices in memory: the bounded cache that RAG collections and semantic memory share,
and the cosine ranking over them.

A cached matrix keeps spare rows, so semantic memory's steady trickle of new rows fills them
in place; only a full buffer is copied (to 1.25x), never the whole matrix per append.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

# Matrices from this size up are ranked in a worker thread (numpy lets go of the GIL): a
# ranking reads every row, ~8 ms of one core at 100,000 rows of 384 floats, which the event
# loop would otherwise spend standing still. Below it the thread hop costs more than it saves.
THREAD_BYTES = 4 * 1024 * 1024

Loaded = tuple[np.ndarray, Any, np.ndarray]  # ids, extra per-row data, vectors


@dataclass(eq=False)
class _Matrix:
    """One cached entry: buffers with room to grow, of which the first `rows` are in use."""

    ids: np.ndarray
    extra: list[Any]
    vectors: np.ndarray
    rows: int
    version: Hashable = None  # what the database said of the rows when they were loaded

    def view(self) -> Loaded:
        # Views of the rows in use: later appends write past them, a growth copies elsewhere.
        return self.ids[:self.rows], self.extra, self.vectors[:self.rows]

    def add(self, ids: np.ndarray, extra: list[Any], vectors: np.ndarray, max_bytes: int) -> None:
        need = self.rows + len(ids)
        if need > len(self.vectors):
            # Spare rows only as far as the cache's budget allows: rows that fit are kept.
            row_bytes = self.vectors.itemsize * int(np.prod(self.vectors.shape[1:]))
            capacity = max(need, min(need + max(need // 4, 256), max_bytes // row_bytes))
            self.ids = _grown(self.ids, self.rows, capacity)
            self.vectors = _grown(self.vectors, self.rows, capacity)
        self.ids[self.rows:need] = ids
        self.vectors[self.rows:need] = vectors
        self.extra.extend(extra)  # callers only index rows below their view's length
        self.rows = need


def _grown(array: np.ndarray, rows: int, capacity: int) -> np.ndarray:
    bigger = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[:rows] = array[:rows]
    return bigger


class MatrixCache:
    """Least-recently-used vector matrices, bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Matrix] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[Loaded]], version: Hashable = None) -> Loaded:
        """The cached matrix, or a fresh load (concurrent misses for one key load once).

        `version`, read from the database before the call, says what the rows are now: an entry
        loaded at another version is loaded again. Writes through this server update or drop
        entries themselves; the version is how writes through another server on the same
        database are seen. The load comes after the version was read, so it is never older."""
        if self._current(key, version):
            self._entries.move_to_end(key)
            return self._entries[key].view()
        async with self._locks.setdefault(key, asyncio.Lock()):
            if self._current(key, version):
                return self._entries[key].view()
            self._entries.pop(key, None)
            generation = self._generation.get(key, 0)
            ids, extra, vectors = await load()
            # A write that happened while loading makes this entry stale: use it once, keep it not.
            if generation == self._generation.get(key, 0):
                self._put(key, _Matrix(ids, list(extra), vectors, len(vectors), version))
            return ids, extra, vectors

    def _current(self, key: str, version: Hashable) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.version == version

    def peek(self, key: str) -> tuple[object, Loaded] | None:
        """The cached entry's rows, without loading it or making it recent, and a handle that
        `append(to=...)` takes to add rows to this entry only (not to a later load of the key)."""
        entry = self._entries.get(key)
        return (entry, entry.view()) if entry is not None else None

    def append(self, key: str, ids: np.ndarray, extra: list[Any], vectors: np.ndarray,
               to: object | None = None) -> None:
        """Add rows to a cached entry (if any; with `to`, if it is still that one) instead of
        dropping it."""
        self._generation[key] = self._generation.get(key, 0) + 1
        if to is not None and self._entries.get(key) is not to:
            return
        entry = self._entries.pop(key, None)
        if entry is not None and entry.vectors.shape[1] == vectors.shape[1]:
            entry.add(ids, extra, vectors, self.max_bytes)
            self._put(key, entry)

    def invalidate(self, key: str) -> None:
        self._generation[key] = self._generation.get(key, 0) + 1
        self._entries.pop(key, None)

    def _put(self, key: str, entry: _Matrix) -> None:
        if entry.vectors.nbytes > self.max_bytes:
            return
        self._entries[key] = entry
        while sum(e.vectors.nbytes for e in self._entries.values()) > self.max_bytes:
            self._entries.popitem(last=False)


async def run_ranking(ranking: Callable[..., T], vectors: np.ndarray, *args: Any) -> T:
    """`ranking(vectors, *args)`, in a worker thread when the matrix is large (THREAD_BYTES)."""
    if vectors.nbytes < THREAD_BYTES:
        return ranking(vectors, *args)
    return await asyncio.to_thread(ranking, vectors, *args)


def cosines(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Each row's dot product with `query` (cosines, for unit rows).

    einsum rather than `@`: its loop is numpy's own, while `@` hands the product to OpenBLAS,
    whose worker threads then spin for a while on the cores the local embedding model's torch
    threads want next. On two cores that made a RAG query at 100,000 chunks take 45 ms at the
    median and 135 ms at p99, against 27 and 38 with einsum. At that size one core's einsum is
    as fast as OpenBLAS's two threads: the product is bound by memory, not arithmetic.
    """
    return np.einsum("ij,j->i", vectors, query)


def top_matches(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes of the k best cosine matches, best first, and their clamped scores."""
    if len(vectors) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores = cosines(vectors, query)
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return best, np.clip(scores[best], 0.0, 1.0)


def top_matches_where(vectors: np.ndarray, query: np.ndarray, k: int, keep: Callable[[int], bool],
                      min_score: float = 0.0) -> list[tuple[int, float]]:
    """The k best (row, score) pairs that `keep` accepts and that score at least `min_score`.
    The ranking widens (k, 4k, 16k, ...) until enough rows pass, so that leaving out a few rows
    (a session's own messages) does not rank and filter the whole matrix."""
    if k <= 0:
        return []
    depth = k
    while True:
        rows, scores = top_matches(vectors, query, depth)
        chosen = [(int(r), float(s)) for r, s in zip(rows, scores, strict=True) if s >= min_score and keep(int(r))]
        exhausted = len(rows) == len(vectors) or (len(scores) and scores[-1] < min_score)
        if len(chosen) >= k or exhausted:
            return chosen[:k]
        depth *= 4

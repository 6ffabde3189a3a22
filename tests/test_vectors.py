"""Unit tests of the in-memory vector matrices: appends that grow a cached matrix in place, the
widening ranking that recall uses to leave a session's own rows out, and where a ranking runs."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from podium.services.vectors import THREAD_BYTES, MatrixCache, run_ranking, top_matches, top_matches_where


def unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, 8)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_appends_grow_the_cached_matrix_and_leave_earlier_views_alone():
    cache = MatrixCache(max_bytes=1 << 20)
    first = unit_rows(3, 0)

    async def load():
        return np.arange(3, dtype=np.int64), ["s0", "s1", "s2"], first.copy()

    async def scenario():
        ids, sessions, vectors = await cache.get("memory:a", load)
        held = vectors.copy()
        added = [unit_rows(7, seed) for seed in range(1, 60)]  # 413 rows: past the first spare rows twice
        for n, chunk in enumerate(added):
            base = 3 + 7 * n
            cache.append("memory:a", np.arange(base, base + 7, dtype=np.int64), [f"x{base + i}" for i in range(7)], chunk)
        assert np.array_equal(vectors, held) and len(ids) == 3  # a view handed out earlier is unchanged
        return await cache.get("memory:a", load)

    ids, sessions, vectors = asyncio.run(scenario())
    assert np.array_equal(vectors, np.concatenate([first, *[unit_rows(7, s) for s in range(1, 60)]]))
    assert np.array_equal(ids, np.arange(416)) and len(sessions) == 416 and sessions[415] == "x415"


def test_a_new_version_loads_again_and_an_append_meant_for_a_dropped_entry_is_ignored():
    cache = MatrixCache(max_bytes=1 << 20)
    loads: list[int] = []

    def loader(rows: int):
        async def load():
            loads.append(rows)
            return np.arange(rows, dtype=np.int64), [], unit_rows(rows, rows)
        return load

    async def scenario():
        assert len((await cache.get("rag:c", loader(2), version=("made", 1)))[0]) == 2
        assert len((await cache.get("rag:c", loader(9), version=("made", 1)))[0]) == 2  # same version: cached
        stale, _ = cache.peek("rag:c")
        assert len((await cache.get("rag:c", loader(3), version=("made", 2)))[0]) == 3  # changed elsewhere
        cache.append("rag:c", np.array([7]), [], unit_rows(1, 7), to=stale)  # that entry is gone: ignored
        return cache.peek("rag:c")[1][0]

    assert asyncio.run(scenario()).tolist() == [0, 1, 2] and loads == [2, 3]


def test_spare_rows_stay_within_the_budget():
    cache = MatrixCache(max_bytes=200 * 8 * 4)  # room for 200 rows of 8 float32

    async def load():
        return np.arange(100, dtype=np.int64), ["s"] * 100, unit_rows(100, 1)

    async def scenario():
        await cache.get("k", load)
        cache.append("k", np.arange(100, 200, dtype=np.int64), ["s"] * 100, unit_rows(100, 2))
        kept = "k" in cache._entries  # noqa: SLF001 - whether the grown entry stayed cached
        cache.append("k", np.arange(200, 201, dtype=np.int64), ["s"], unit_rows(1, 3))
        return kept, "k" in cache._entries  # noqa: SLF001

    # 200 rows fit the budget (no spare rows beyond it); the 201st does not, and the entry leaves.
    assert asyncio.run(scenario()) == (True, False)


def test_top_matches_where_widens_past_the_rows_it_leaves_out():
    vectors = unit_rows(500, 3)
    query = vectors[0]
    scores = vectors @ query
    order = np.argsort(-scores)
    excluded = set(order[:40].tolist())  # the 40 closest rows belong to the caller's own session
    found = top_matches_where(vectors, query, 3, lambda row: row not in excluded)
    assert [row for row, _ in found] == order[40:43].tolist()
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    # A floor above every remaining score stops the search with what passed: nothing here.
    assert top_matches_where(vectors, query, 3, lambda row: row not in excluded, min_score=0.999) == []
    assert top_matches_where(vectors, query, 0, lambda row: True) == []


def test_large_matrices_are_ranked_off_the_event_loop_with_the_same_answer():
    small = unit_rows(100, 4)
    large = unit_rows(THREAD_BYTES // (8 * 4) + 1, 5)
    assert small.nbytes < THREAD_BYTES <= large.nbytes

    def ranking(vectors, query, k):
        return threading.current_thread(), top_matches(vectors, query, k)

    async def scenario():
        return [await run_ranking(ranking, m, m[7], 5) for m in (small, large)]

    (small_thread, small_found), (large_thread, large_found) = asyncio.run(scenario())
    assert small_thread is threading.current_thread()  # the hop would cost more than the ranking
    assert large_thread is not threading.current_thread()  # the event loop's thread stays free
    for matrix, (rows, scores) in ((small, small_found), (large, large_found)):
        reference = matrix @ matrix[7]  # BLAS's product, against the ranking's own
        assert rows[0] == 7 and rows.tolist() == np.argsort(-reference, kind="stable")[:5].tolist()
        assert np.allclose(scores, np.clip(reference[rows], 0.0, 1.0), atol=1e-6)

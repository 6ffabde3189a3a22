"""Scenario 5: RAG with the local embedder: ingest chunks per second (`POST /v1/rag/ingest`),
query p50 (`POST /v1/rag/query`) at each collection size."""

from __future__ import annotations

import random
import time

import httpx

from harness import Profile, Section, fmt, knob, load, routes, scripted_agent, start_podium

SIZES = [int(s) for s in knob("RAG_SIZES", "10000").split(",")]
BATCH = 500
QUERIES = knob("RAG_QUERIES", 60)
WORDS = ("agent server memory vector model token stream session queue cache index network latency "
         "storage python request budget trace metric event socket relay embed chunk query score").split()


def documents(start: int, count: int) -> list[dict]:
    rng = random.Random(start)
    return [{"text": " ".join(rng.choice(WORDS) for _ in range(40)) + f" doc{start + i}",
             "metadata": {"n": start + i}} for i in range(count)]


def run() -> Section:
    section = Section("5. RAG with the local embedder",
                      headers=["collection size (chunks)", "ingest chunks/s (this step)", "query p50 ms",
                               "query p99 ms", "queries/s (c=1)", "errors"])
    with start_podium([scripted_agent("bench-echo", [{"reply": "{input}"}])]).wait_healthy() as podium:
        have = routes(podium)
        if ("POST", "/v1/rag/ingest") not in have or ("POST", "/v1/rag/query") not in have:
            section.skipped = "/v1/rag/ingest or /v1/rag/query is not served yet (RAG not built)."
            return section
        ingested = 0
        with httpx.Client(base_url=podium.url, timeout=600) as http:
            for size in sorted(SIZES):
                started, chunks = time.perf_counter(), 0
                while ingested < size:
                    n = min(BATCH, size - ingested)
                    reply = http.post("/v1/rag/ingest", json={"collection": "bench", "documents": documents(ingested, n),
                                                              "chunk_size": 512, "chunk_overlap": 0})
                    reply.raise_for_status()
                    chunks += reply.json()["chunks_created"]
                    ingested += n
                rate = chunks / (time.perf_counter() - started)
                load("http", podium.url + "/v1/rag/query", {"collection": "bench", "top_k": 5}, requests=5,
                     unique="query")  # the first query loads the matrix cache
                q = load("http", podium.url + "/v1/rag/query", {"collection": "bench", "top_k": 5},
                         requests=QUERIES, unique="query")
                section.rows.append([f"{size:,}", fmt(rate, 0), fmt(q["p50_ms"], 1), fmt(q["p99_ms"], 1),
                                     fmt(q["rps"], 1), q["errors"]])
                if size >= 100_000:
                    section.target("RAG query p50 <= 50 ms at 100k chunks", f"{q['p50_ms']:.1f} ms",
                                   q["p50_ms"] <= 50)
                else:
                    section.target(f"RAG query p50 at {size:,} chunks (reported)", f"{q['p50_ms']:.1f} ms", None)
            section.target("RAG ingest (reported)", f"{rate:,.0f} chunks/s", None)
            if max(SIZES) < 100_000:
                section.target("RAG query p50 <= 50 ms at 100k chunks",
                               f"not measured (BENCH_RAG_SIZES=10000,100000: ~{100_000 / rate / 60:.0f} min of ingest)",
                               None)
            if knob("PROFILE", True):
                with Profile(podium.pid, 8, "s5_rag_query") as profile:
                    load("http", podium.url + "/v1/rag/query", {"collection": "bench", "top_k": 5},
                         duration=6, warmup=0, unique="query")
                section.notes.append(f"Profile of queries at {ingested:,} chunks (bench/profiles/s5_rag_query.txt):"
                                     "\n\n```\n" + profile.summary() + "\n```")
    section.notes.append(
        "The profile counts time holding the GIL only. The embedding model's forward pass and the "
        "ranking's product let go of it (both run in worker threads), so neither shows there at its "
        "size. Timed inside the server instead, at 100,000 chunks on this 2-core machine (medians of "
        "about 400 queries): embedding 10.8-11.7 ms, ranking 8.2-8.7 ms, fetching the 5 chunks "
        "0.9-1.0 ms, the collection lookup 0.5-0.6 ms; HTTP and the rest about 1.5 ms. Before commit "
        "446ca1c the ranking went through OpenBLAS (`@`), whose worker threads spin after each product "
        "on the cores that the embedding model's torch threads wanted next: embedding 20-29 ms, "
        "ranking 13.5-16 ms, p50 38-50 ms and p99 123-134 ms, in the same setting.")
    section.notes.append(
        f"Documents of 40 random words (one chunk each), ingested {BATCH} per request into one collection "
        "with the local embedder (all-MiniLM-L6-v2 on CPU). Queries are distinct strings (no query cache "
        f"hit), {QUERIES} at concurrency 1, after 5 unmeasured ones. "
        + ("" if 100_000 in SIZES else "100k chunks is not in the default run (BENCH_RAG_SIZES=10000,100000). "))
    return section

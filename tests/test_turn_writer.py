"""The turn writer: concurrent turns share transactions, one bad turn fails alone, spans arrive."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from podium.store.conversations import ConversationStore, TurnRecord
from podium.store.db import Database
from podium.store.traces import TraceStore
from podium.store.turn_writer import TurnWriter

SLOW = {"name": "slow", "orchestration": {"pattern": "single"}, "memory": {"semantic": False},
        "model": {"provider": "scripted", "model": "slow", "script": [{"reply": "done", "delay_ms": 300}]}}


def turn(turn_id: str, session: str) -> TurnRecord:
    return TurnRecord(turn_id=turn_id, session_id=session, agent="a", user_message="hi", assistant_message="hello",
                      status="completed", model="scripted/x", provider="scripted", input_tokens=1, output_tokens=1,
                      total_ms=1.0, model_ms=1.0, tool_ms=0.0, context=None)


def span(span_id: str) -> dict:
    now = time.time() * 1000
    return {"trace_id": "t" * 32, "span_id": span_id, "parent_id": None, "name": "agent.run", "start_ms": now,
            "end_ms": now + 1, "duration_ms": 1.0, "attributes": {}, "status": "OK", "agent": "a", "session_id": "s"}


def test_a_bad_turn_fails_alone_and_spans_need_no_turn_to_carry_them(tmp_path):
    async def scenario() -> tuple[list, list, list, dict]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
        await db.migrate()
        conversations, traces = ConversationStore(db), TraceStore(db)
        writer = TurnWriter(db, conversations, traces, span_delay=0.01)
        # Queued together, so written as one batch; the duplicate turn id breaks that batch.
        outcomes = await asyncio.gather(writer.record(turn("turn_1", "s1")), writer.record(turn("turn_1", "s2")),
                                        writer.record(turn("turn_2", "s3")), return_exceptions=True)
        writer.add_spans([span("aaaaaaaaaaaaaaaa")])
        await asyncio.sleep(0.3)  # no flush: the spans go alone after span_delay
        stored = await traces.trace("t" * 32)
        history = [m["content"] for s in ("s1", "s2", "s3") for m in await conversations.history(s, limit=10)]
        figures = writer.figures()
        await writer.close()
        await db.close()
        return outcomes, stored, history, figures

    outcomes, stored, history, figures = asyncio.run(scenario())
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Exception) and "UNIQUE" in str(outcomes[1])
    assert history == ["hi", "hello", "hi", "hello"]  # s1 and s3 whole, nothing of s2
    assert [s["span_id"] for s in stored] == ["aaaaaaaaaaaaaaaa"]
    assert figures == {"batches": 2, "turns": 2, "dropped_spans": 0}


def test_concurrent_runs_share_commits_and_keep_every_turn(podium):
    server = podium([SLOW])
    count = 24

    def run(i: int) -> dict:
        return server.http.post("/v1/agents/slow/run", json={"query": f"q{i}", "session_id": f"w{i}"}).json()

    with ThreadPoolExecutor(count) as pool:
        bodies = list(pool.map(run, range(count)))
    assert all(b["response"] == "done" for b in bodies)
    writer = server.http.get("/api/stats/capacity").json()["turn_writer"]
    assert writer["turns"] == count and writer["batches"] < count and writer["dropped_spans"] == 0
    for i in range(count):
        [only] = server.http.get(f"/api/sessions/w{i}/turns").json()["turns"]
        assert only["status"] == "completed"
        names = {s["name"] for s in server.http.get(f"/v1/traces/{only['trace_id']}").json()["spans"]}
        assert {"agent.run", "llm.call"} <= names

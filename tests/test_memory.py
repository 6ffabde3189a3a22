"""Memory over real HTTP: semantic memory with real local embeddings, recall across sessions,
the remember tool, console memory routes, FTS5 search, and conversation strategies."""

from __future__ import annotations

import json
import time

from podium.runtime.memory import SUMMARY_PROMPT

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}


def upstream_agent(base_url: str, **extra) -> dict:
    return {"name": "pal", "orchestration": {"pattern": "single"},
            "model": {"provider": "openai", "model": "fake-model", "base_url": base_url, "api_key": "sk-test"},
            **extra}


def run(server, agent: str, query: str, session: str) -> dict:
    answer = server.http.post(f"/v1/agents/{agent}/run", json={"query": query, "session_id": session})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_semantic_memory_is_searchable_by_meaning_and_survives_restart(podium):
    server = podium([ECHO])
    run(server, "echo", "My favourite programming language is Rust.", "s-a")
    run(server, "echo", "I have a golden retriever called Max.", "s-b")
    found = server.http.get("/v1/memory/echo/semantic", params={"query": "which pet does the user own?",
                                                                "top_k": 1}).json()
    assert [r["text"] for r in found["results"]] == ["I have a golden retriever called Max."]
    hit = found["results"][0]
    assert hit["metadata"]["session_id"] == "s-b" and hit["metadata"]["timestamp"].endswith("Z")
    assert 0 < hit["score"] <= 1
    server.restart()
    again = server.http.get("/v1/memory/echo/semantic", params={"query": "coding in which language"}).json()
    assert again["results"][0]["text"] == "My favourite programming language is Rust."
    assert len(again["results"]) == 2


def embedder_ready(server) -> bool:
    return server.http.get("/api/stats/capacity").json()["embedder"]["ready"]


def semantic_figures(server) -> dict:
    return server.http.get("/api/stats/capacity").json()["semantic_memory"]


def within(seconds: float, condition) -> bool:
    """Whether `condition()` comes true within `seconds` (asked every 20 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_embedder_loads_at_start_up_when_the_agents_will_need_it(podium):
    def ready_within(server, seconds: float) -> bool:
        return within(seconds, lambda: embedder_ready(server))

    # Semantic memory on (the default): loaded with no request asking for it.
    assert ready_within(podium([ECHO]), 180)
    # The model is now in this process, so a load would take well under a second from here on:
    # a server that does not need it, or is told not to, is still without it after one.
    quiet = podium([{**ECHO, "memory": {"semantic": False}}])
    assert not ready_within(quiet, 1)
    assert not ready_within(podium([ECHO], {"embedder_preload": False}), 1)
    # An agent's knowledge needs it too, and so does a RAG collection (loaded at the next start).
    assert ready_within(podium([{**ECHO, "memory": {"semantic": False}, "knowledge": ["kb"]}]), 30)
    quiet.http.post("/v1/rag/ingest", json={"collection": "kb", "documents": [{"text": "hi"}]}).raise_for_status()
    assert embedder_ready(quiet)
    assert ready_within(quiet.restart(), 30)


def test_semantic_route_errors_and_opt_out(podium):
    quiet = {**ECHO, "name": "quiet", "memory": {"semantic": False}}
    server = podium([ECHO, quiet])
    run(server, "quiet", "A secret about the quarterly numbers.", "q1")
    assert server.http.get("/v1/memory/quiet/semantic", params={"query": "quarterly numbers"}).json() == {"results": []}
    missing = server.http.get("/v1/memory/ghost/semantic", params={"query": "x"})
    assert missing.status_code == 404 and "detail" in missing.json()
    assert server.http.get("/v1/memory/echo/semantic").status_code == 422
    assert server.http.get("/v1/memory/echo/semantic", params={"query": "x", "top_k": 0}).status_code == 422


def test_memories_from_other_sessions_reach_the_model(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream.base_url)])
    run(server, "pal", "I have a golden retriever called Max.", "first")
    run(server, "pal", "The weather in Lisbon was lovely.", "first")
    # Reading memory waits for the background embedding, so the next run can recall it.
    assert server.http.get("/v1/memory/pal/semantic", params={"query": "dog"}).json()["results"]
    run(server, "pal", "What breed is my dog?", "second")
    system = fake_upstream.requests[-1]["messages"][0]["content"]
    assert "golden retriever called Max" in system
    run(server, "pal", "What breed is my dog?", "first")  # its own session's words are history, not recall
    sent = fake_upstream.requests[-1]["messages"]
    assert "golden retriever" not in sent[0]["content"]
    assert {"role": "user", "content": "I have a golden retriever called Max."} in sent[1:]


def test_a_long_recalled_message_reaches_the_model_as_its_beginning(podium, fake_upstream):
    from podium.services.memory import RECALLED_CHARS

    # Any score recalls: what is asserted is how a recalled message is shown, not whether it matches.
    server = podium([upstream_agent(fake_upstream.base_url)], config={"memory_recall_min_score": 0})
    long = "I have a golden retriever called Max. " + "He loves long walks by the river. " * 300
    run(server, "pal", long, "first")
    assert server.http.get("/v1/memory/pal/semantic", params={"query": "dog"}).json()["results"]
    run(server, "pal", "What breed is my dog?", "second")
    system = fake_upstream.requests[-1]["messages"][0]["content"]
    [line] = [x for x in system.splitlines() if "golden retriever called Max" in x]
    assert line == "- " + long[:RECALLED_CHARS].rstrip() + "…"
    # The stored message itself stays whole.
    stored = server.http.get("/v1/memory/pal/semantic", params={"query": "dog"}).json()["results"]
    assert [r["text"] for r in stored if r["metadata"]["session_id"] == "first"] == [long]


def test_recall_reaches_past_the_sessions_own_closest_messages(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream.base_url)], config={"memory_recall_top_k": 1,
                                                                         "memory_recall_min_score": 0.2})
    for text in ["My dog Rex loves the beach.", "Rex, my dog, chews shoes.", "My dog Rex is a beagle.",
                 "Rex the dog sleeps all day.", "I walk my dog Rex twice a day."]:
        run(server, "pal", text, "mine")
    run(server, "pal", "My neighbour has a dog too, a poodle.", "theirs")
    server.http.get("/v1/memory/pal/semantic", params={"query": "flush"})
    ranked = server.http.get("/v1/memory/pal/semantic", params={"query": "Tell me about my dog Rex",
                                                                "top_k": 6}).json()["results"]
    assert [r["metadata"]["session_id"] for r in ranked][:5] == ["mine"] * 5  # its own rows rank first
    run(server, "pal", "Tell me about my dog Rex", "mine")
    system = fake_upstream.requests[-1]["messages"][0]["content"]
    assert "a poodle" in system and "beagle" not in system


def test_a_recalled_message_is_stored_with_the_vector_its_recall_computed(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream.base_url)])

    def figures() -> dict:
        server.http.get("/v1/memory/pal/semantic", params={"query": "flush"})  # waits for storage, embeds once
        return semantic_figures(server)

    run(server, "pal", "I keep bees on the roof.", "one")  # no other session yet: no recall
    before = figures()
    assert before["embedded"] == 2 and before["reused"] == 0  # its message, then the search above
    run(server, "pal", "What do you know about my bees?", "two")  # recalls from "one"
    after = figures()
    assert fake_upstream.requests[-1]["messages"][0]["content"].count("bees on the roof") == 1
    # One vector for run two (the recall's, stored as is) and one for the search: not three.
    assert after["embedded"] - before["embedded"] == 2 and after["reused"] == 1
    found = server.http.get("/v1/memory/pal/semantic", params={"query": "what do you know about my bees"}).json()
    top = found["results"][0]
    assert top["text"] == "What do you know about my bees?" and top["metadata"]["session_id"] == "two"
    assert top["score"] > 0.9  # the stored vector is the message's own



def test_messages_the_queue_has_no_room_for_are_read_back_not_lost(podium):
    """With a queue of one, concurrent runs overflow it; every user message is still stored,
    once, from the messages table after the queue has emptied."""
    from concurrent.futures import ThreadPoolExecutor

    server = podium([ECHO], {"memory_queue_size": 1})
    texts = [f"Note {i}: the {word} is in drawer {i}." for i, word in enumerate(["key", "map", "pen", "cup"] * 15)]

    def send(i: int) -> None:
        run(server, "echo", texts[i], f"burst-{i}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(len(texts))))
    found = server.http.get("/v1/memory/echo/semantic", params={"query": "drawer", "top_k": 100}).json()["results"]
    assert sorted(r["text"] for r in found) == sorted(texts)  # each message, none twice
    assert {r["metadata"]["session_id"] for r in found} == {f"burst-{i}" for i in range(len(texts))}
    figures = semantic_figures(server)
    assert figures["deferred"] > 0 and figures["read_back"] == figures["deferred"]


def test_messages_an_earlier_process_left_unstored_are_stored_at_the_next_start(podium):
    """Messages recorded after an agent's newest memory but not stored (the process stopped with
    them queued, or semantic memory was off) are read back when the server starts again; before
    any memory was stored there is nothing to resume."""
    import yaml

    def semantic(server, on: bool) -> None:
        (server.agents_dir / "echo.yaml").write_text(yaml.safe_dump({**ECHO, "memory": {"semantic": on}}))
        server.restart()

    def remembered(server) -> list[str]:
        found = server.http.get("/v1/memory/echo/semantic", params={"query": "garden", "top_k": 100}).json()
        return sorted(r["text"] for r in found["results"])

    server = podium([{**ECHO, "memory": {"semantic": False}}])
    run(server, "echo", "The garden gate is blue.", "before-any")
    semantic(server, True)
    run(server, "echo", "The garden shed is green.", "first")
    assert remembered(server) == ["The garden shed is green."]  # no memory before it: nothing resumed
    semantic(server, False)
    left = ["The garden hose is red.", "The garden bench is oak."]
    for i, text in enumerate(left):
        run(server, "echo", text, f"left-{i}")
    semantic(server, True)
    assert remembered(server) == sorted(["The garden shed is green.", *left])  # each once
    figures = semantic_figures(server)
    assert figures["read_back"] == 2 and figures["deferred"] == 0


def test_two_servers_reading_back_the_same_messages_store_each_once(podium, fake_upstream):
    """Two servers on one database that start together both read back the messages an earlier
    process left unstored; each message is stored in semantic memory once, not once per server.
    The upstream embedder answers neither server before both have asked, so both have read."""
    import yaml

    from tests.conftest import Podium

    config = {"embedder": "openai", "embedder_base_url": fake_upstream.base_url}
    first = podium([ECHO], config)
    run(first, "echo", "The garden shed is green.", "first")  # a memory, so that a later start resumes
    assert within(60, lambda: first.query("SELECT COUNT(*) FROM memory_semantic") == [(1,)])
    (first.agents_dir / "echo.yaml").write_text(yaml.safe_dump({**ECHO, "memory": {"semantic": False}}))
    first.restart()
    left = ["The garden hose is red.", "The garden bench is oak."]
    for i, text in enumerate(left):
        run(first, "echo", text, f"left-{i}")
    first.stop()

    (first.agents_dir / "echo.yaml").write_text(yaml.safe_dump(ECHO))
    fake_upstream.hold_embeddings(until=2)
    second = Podium(first.root.parent / "second", [ECHO], {**config, "database_url": first.database_url})
    try:
        first.start()
        second.start()
        for server in (first, second):
            assert within(60, lambda server=server: semantic_figures(server)["read_back"] == 2)
    finally:
        second.stop()  # each waits for its semantic-memory worker to finish
    first.stop()
    stored = first.query("SELECT text, COUNT(*) FROM memory_semantic GROUP BY text ORDER BY text")
    assert stored == [(text, 1) for text in sorted(["The garden shed is green.", *left])]


def test_memories_stored_together_keep_their_own_ids_and_a_run_is_stored_once(tmp_path):
    """A batch of memories is one multi-row INSERT through the database's writer: each row's id
    comes back under its run's turn id, since the vector cache pairs ids with vectors. A second
    writer (another server on the same database) storing runs already stored gets back only the
    ids of those it stored, and no run is stored twice."""
    import asyncio

    import numpy as np

    from podium.store.db import Database
    from podium.store.memory import MemoryStore
    from tests.conftest import database_url

    texts = [f"memory number {i}" for i in range(5)]
    url = database_url(tmp_path, "m.db")

    def rows(numbers: range) -> list[dict]:
        return [{"agent": "pal", "session_id": f"s{i}", "text": texts[i], "created_at": i, "turn_id": f"turn_{i}"}
                for i in numbers]

    async def scenario() -> tuple[dict, dict, dict, tuple]:
        db = Database(url)
        await db.migrate()
        store = MemoryStore(db)
        vectors = np.eye(5, 384, dtype=np.float32)  # row i is the unit vector i
        first = await store.add_semantic(rows(range(3)), vectors[:3], "test")
        second = await store.add_semantic(rows(range(1, 5)), vectors[1:], "test")  # runs 1 and 2 again
        found = await store.semantic_rows([*first.values(), *second.values()])
        matrix = await store.semantic_matrix("pal", "test", 384)
        await db.close()
        return first, second, found, matrix

    first, second, found, (matrix_ids, sessions, vectors) = asyncio.run(scenario())
    assert sorted(first) == ["turn_0", "turn_1", "turn_2"] and sorted(second) == ["turn_3", "turn_4"]
    ids = {**first, **second}
    assert len(set(ids.values())) == 5 and len(matrix_ids) == 5  # five runs, five memories
    assert [found[ids[f"turn_{i}"]]["text"] for i in range(5)] == texts
    order = {int(i): row for row, i in enumerate(matrix_ids)}
    assert [int(np.argmax(vectors[order[ids[f"turn_{i}"]]])) for i in range(5)] == list(range(5))  # own vectors
    assert [sessions[order[ids[f"turn_{i}"]]] for i in range(5)] == [f"s{i}" for i in range(5)]


def test_a_run_stored_twice_before_migration_0015_keeps_its_first_memory(tmp_path):
    """Copies of one run's memory written before migration 0015 are reduced to the first one when
    it makes `turn_id` unique; memories without a turn (from before 0014) all stay."""
    import asyncio

    from alembic import command
    from sqlalchemy import text

    from podium.store.db import Database, alembic_config
    from tests.conftest import database_url

    url = database_url(tmp_path, "d.db")
    rows = [("a", "t1"), ("a again", "t1"), ("b", "t2"), ("old", None), ("old too", None), ("b again", "t2")]

    async def scenario() -> list[tuple]:
        db = Database(url)
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0014_semantic_memory_turns")
        async with db.engine.begin() as conn:
            for number, (words, turn) in enumerate(rows):
                await conn.execute(text("INSERT INTO memory_semantic (agent, session_id, text, embedder, vector,"
                                        " created_at, turn_id) VALUES ('pal', 's', :t, 'e', :v, :n, :turn)"),
                                   {"t": words, "v": b"\0" * 4, "n": number, "turn": turn})
        await db.migrate()
        async with db.engine.connect() as conn:
            kept = [tuple(r) for r in await conn.execute(text("SELECT text, turn_id FROM memory_semantic ORDER BY id"))]
        await db.close()
        return kept

    assert asyncio.run(scenario()) == [("a", "t1"), ("b", "t2"), ("old", None), ("old too", None)]


REMEMBER = {"name": "keeper", "tools": ["remember"], "orchestration": {"pattern": "react"},
            "model": {"provider": "scripted", "model": "keeper", "script": [
                {"tool_call": {"name": "remember", "arguments": {"content": "User prefers metric units",
                                                                 "category": "Preferences"}}},
                {"tool_call": {"name": "remember", "arguments": {"content": "Draft the zanzibar itinerary"}}},
                {"reply": "Noted."}]}}


def test_remember_tool_feeds_working_and_semantic_memory(podium):
    server = podium([REMEMBER, ECHO])
    body = run(server, "keeper", "Please keep this in mind.", "work-1")
    assert [c["tool"] for c in body["tool_calls"]] == ["remember", "remember"]
    assert json.loads(body["tool_calls"][0]["output"])["kind"] == "fact"
    working = server.http.get("/api/memory/working/work-1").json()
    assert [e["content"] for e in working["entries"]] == ["Draft the zanzibar itinerary"]
    assert working["entries"][0]["agent"] == "keeper"
    assert server.http.get("/api/memory/working/other").json()["entries"] == []
    assert server.http.get("/api/memory/working").json()["count"] == 1
    assert server.http.get("/api/memory/semantic/categories").json()["categories"] == [
        {"category": "preferences", "count": 1}]
    facts = server.http.get("/api/memory/semantic/Preferences").json()
    assert [e["content"] for e in facts["entries"]] == ["User prefers metric units"]
    assert server.http.get("/api/memory/semantic").json()["entries"][0]["session_id"] == "work-1"
    assert server.http.get("/api/memory/semantic/people").json()["entries"] == []
    events = server.http.get("/api/memory/episodic", params={"agent": "keeper"}).json()["events"]
    assert events[0]["outcome"] == "completed" and events[0]["session_id"] == "work-1"
    assert [c["tool"] for c in events[0]["tool_calls"]] == ["remember", "remember"]
    assert all(c["outcome"] == "ok" for c in events[0]["tool_calls"])


def test_working_notes_join_the_session_context(podium, fake_upstream):
    keeper = {**REMEMBER, "name": "keeper"}
    pal = upstream_agent(fake_upstream.base_url, tools=["remember"])
    server = podium([keeper, pal])
    run(server, "keeper", "Please keep this in mind.", "shared")
    run(server, "pal", "What did we plan?", "shared")
    assert "Draft the zanzibar itinerary" in fake_upstream.requests[-1]["messages"][0]["content"]


def test_full_text_search_finds_words_from_past_sessions_after_restart(podium):
    server = podium([ECHO, REMEMBER])
    run(server, "echo", "The kumquat shipment arrives on Tuesday.", "past-1")
    run(server, "echo", "Nothing to see here.", "past-2")
    run(server, "keeper", "Please keep this in mind.", "past-3")
    server.restart()
    found = server.http.get("/api/memory/search", params={"q": "kumquat"}).json()
    messages = [r for r in found["results"] if r["source"] == "message"]
    assert {r["session_id"] for r in messages} == {"past-1"}
    assert "The [kumquat] shipment" in messages[0]["snippet"] and messages[0]["timestamp"].endswith("Z")
    # Best first, across more matches than the limit: BM25 puts the denser message (and its
    # echo) above the single mentions.
    for i in range(4):
        run(server, "echo", f"A kumquat, number {i}, in a long sentence about fruit and shipping.", f"more-{i}")
    run(server, "echo", "kumquat kumquat kumquat", "dense")
    best = server.http.get("/api/memory/search", params={"q": "kumquat", "limit": 2}).json()["results"]
    assert [r["session_id"] for r in best] == ["dense", "dense"]
    assert len(server.http.get("/api/memory/search", params={"q": "kumquat", "limit": 50}).json()["results"]) == 12
    notes = server.http.get("/api/memory/search", params={"q": "zanzibar"}).json()["results"]
    assert [(r["source"], r["session_id"]) for r in notes] == [("memory", "past-3")]
    assert server.http.get("/api/memory/search", params={"q": "\"unbalanced AND ("}).status_code == 200
    missing = server.http.get("/api/memory/search")
    assert missing.status_code == 400 and set(missing.json()) == {"error"}


def test_text_written_before_the_stored_search_vectors_is_found_after_them(tmp_path):
    """Migration 0010 stores each searched table's tsvector on PostgreSQL (a no-op on SQLite):
    rows from before it are found after it, as are rows written after it, and downgrading
    and upgrading again keeps them found."""
    import asyncio

    from alembic import command
    from sqlalchemy import text

    from podium.store.db import Database, alembic_config
    from podium.store.memory import MemoryStore
    from tests.conftest import POSTGRES, database_url

    url = database_url(tmp_path, "v.db")

    async def found(store: MemoryStore) -> list[tuple[str, str]]:
        return sorted((r["source"], r["snippet"]) for r in await store.search("okapi", limit=10))

    async def scenario() -> tuple[list, list, list, list]:
        db = Database(url)
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0009_turns_by_time")
        async with db.engine.begin() as conn:  # rows as the schema before 0010 held them
            await conn.execute(text("INSERT INTO sessions (id, status, started_at, last_activity)"
                                    " VALUES ('s', 'running', 1, 1)"))
            await conn.execute(text("INSERT INTO messages (session_id, role, content, created_at)"
                                    " VALUES ('s', 'user', 'An okapi at the river', 1)"))
            await conn.execute(text("INSERT INTO memory_notes (session_id, kind, content, created_at)"
                                    " VALUES ('s', 'working', 'The okapi likes leaves', 1)"))
        await db.migrate()
        store = MemoryStore(db)
        before = await found(store)
        async with db.engine.begin() as conn:
            await conn.execute(text("INSERT INTO messages (session_id, role, content, created_at)"
                                    " VALUES ('s', 'assistant', 'Another okapi here', 2)"))
        after = await found(store)
        columns = []
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                columns = sorted((await conn.execute(text(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = 'search_vector'"
                    " AND is_generated = 'ALWAYS' AND table_schema = current_schema()"))).scalars())
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0009_turns_by_time")
        await db.migrate()
        again = await found(store)
        await db.close()
        return before, after, again, columns

    before, after, again, columns = asyncio.run(scenario())
    assert before == [("memory", "The [okapi] likes leaves"), ("message", "An [okapi] at the river")]
    assert after == again == sorted([*before, ("message", "Another [okapi] here")])
    assert columns == ([] if not POSTGRES else ["memory_notes", "messages", "rag_chunks"])


def test_sliding_window_keeps_the_last_turns(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream.base_url, memory={"max_turns": 1, "semantic": False})])
    for text in ("one", "two", "three"):
        run(server, "pal", text, "win")
    sent = fake_upstream.requests[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "two"), ("assistant", "Hello from upstream "), ("user", "three")]


def test_token_budget_keeps_what_fits(podium, fake_upstream):
    memory = {"strategy": "token_budget", "max_context_tokens": 300, "semantic": False}
    server = podium([upstream_agent(fake_upstream.base_url, memory=memory)])
    for i in range(6):
        run(server, "pal", f"message {i} " + "word " * 60, "budget")  # about 80 tokens each
    sent = fake_upstream.requests[-1]["messages"]
    history = sent[1:-1]
    assert 0 < len(history) < 10
    assert sum(len(m["content"]) for m in sent) // 4 <= 300
    assert history[-1]["content"].strip() == "Hello from upstream" and history[0]["role"] == "user"
    assert sent[-1]["content"].startswith("message 5")


def test_summary_is_written_once_and_stored(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream.base_url,
                                    memory={"strategy": "summary", "max_turns": 1, "semantic": False})])

    def summaries() -> list[dict]:
        return [r for r in fake_upstream.requests if r["messages"][0]["content"] == SUMMARY_PROMPT]

    for text in ("alpha", "bravo", "charlie"):
        run(server, "pal", text, "sum")
    assert summaries() == []  # up to two turns stay verbatim
    run(server, "pal", "delta", "sum")
    assert len(summaries()) == 1
    folded = summaries()[0]["messages"][1]["content"]
    assert "user: alpha" in folded and "user: bravo" in folded and "charlie" not in folded
    sent = fake_upstream.requests[-1]["messages"]
    assert sent[1] == {"role": "system", "content": "Summary of the earlier conversation:\nHello from upstream"}
    assert [m["content"].strip() for m in sent[2:]] == ["charlie", "Hello from upstream", "delta"]
    server.restart()
    run(server, "pal", "echo", "sum")  # three unsummarised turns: stored summary reused, not recomputed
    assert len(summaries()) == 1
    assert fake_upstream.requests[-1]["messages"][1]["content"].endswith("Hello from upstream")
    cleared = server.http.delete("/v1/memory/pal/history/sum")
    assert cleared.status_code == 200
    run(server, "pal", "fresh start", "sum")
    assert [m["content"] for m in fake_upstream.requests[-1]["messages"][1:]] == ["fresh start"]


def test_memory_and_rag_changes_are_pushed_on_ws(podium):
    from websockets.sync.client import connect

    server = podium([REMEMBER])
    with connect(server.ws_url + "/ws", open_timeout=10) as ws:
        run(server, "keeper", "Please keep this in mind.", "pushed")
        server.http.post("/v1/rag/ingest", json={"collection": "c", "documents": [{"text": "hi"}]}).raise_for_status()
        seen = []
        while len(seen) < 3:
            message = json.loads(ws.recv(timeout=30))
            if message["event"].startswith(("memory:", "rag:")):
                seen.append(message)
    assert [m["event"] for m in seen] == ["memory:added", "memory:added", "rag:ingested"]
    assert seen[0]["data"]["category"] == "preferences" and seen[0]["data"]["session_id"] == "pushed"
    assert seen[2]["data"] == {"collection": "c", "documents_ingested": 1, "chunks_created": 1}


def test_memories_stored_through_another_server_are_found_by_this_one(podium):
    """Two servers on one database: a memory stored through one reaches the other's searches,
    though the other had cached the agent's memories before it was stored (a search has the
    cache checked against the database at most every 2 s)."""
    from tests.conftest import Podium

    first = podium([ECHO])
    run(first, "echo", "My favourite programming language is Rust.", "s-a")
    second = Podium(first.root.parent / "second", [ECHO], {"database_url": first.database_url}).start()
    question = {"query": "which pet does the user own?", "top_k": 1}

    def best(server) -> str:
        return server.http.get("/v1/memory/echo/semantic", params=question).json()["results"][0]["text"]

    try:
        assert best(second) == "My favourite programming language is Rust."  # its cache: this one alone
        run(first, "echo", "I have a golden retriever called Max.", "s-b")
        assert best(first) == "I have a golden retriever called Max."  # stored (a search waits for that)
        assert within(30, lambda: best(second) == "I have a golden retriever called Max.")
        found = second.http.get("/v1/memory/echo/semantic", params={**question, "top_k": 5}).json()["results"]
        assert sorted(r["text"] for r in found) == ["I have a golden retriever called Max.",
                                                    "My favourite programming language is Rust."]
    finally:
        second.stop()

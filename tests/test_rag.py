"""RAG (seed 3) over real HTTP with real embeddings from the local all-MiniLM-L6-v2 model."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from podium.runtime.chunking import chunk_text
from podium.errors import Unprocessable

CORPUS = [
    {"text": "The feline rested beside the fireplace all afternoon, purring softly.", "metadata": {"id": "cat"}},
    {"text": "Interest rates were raised by the central bank to curb inflation.", "metadata": {"id": "rates"}},
    {"text": "A striker scored twice in the final minutes of the match.", "metadata": {"id": "football"}},
    {"text": "Photosynthesis lets plants turn sunlight into chemical energy.", "metadata": {"id": "plants"}},
]
# Each question shares no word with its passage: only meaning can connect them.
QUESTIONS = {"kitty napping near a hearth": "cat", "borrowing costs went up": "rates",
             "soccer goal near full time": "football", "how do leaves make food from light": "plants"}
ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"},
        "memory": {"semantic": False}}


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.fixture
def server(podium):
    server = podium([ECHO])
    answer = server.http.post("/v1/rag/ingest", json={"collection": "docs", "documents": CORPUS})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"collection": "docs", "documents_ingested": 4, "chunks_created": 4}
    return server


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_query_finds_passages_by_meaning_not_words(server, mode):
    # Hybrid mode: no keyword matches at all (stop words are ignored), so meaning still decides.
    for question, expected in QUESTIONS.items():
        passage = next(d["text"] for d in CORPUS if d["metadata"]["id"] == expected)
        assert not words(question) & words(passage)
        results = server.http.post("/v1/rag/query", json={
            "collection": "docs", "query": question, "top_k": 2, "mode": mode}).json()["results"]
        assert results[0]["metadata"] == {"id": expected}, (question, results)
        assert results[0]["text"] == passage
        assert len(results) == 2 and results[0]["score"] >= results[1]["score"]


def test_hybrid_mode_lets_a_rare_keyword_win(server):
    extra = [{"text": "Error code QX-7731 means the disk quota is exhausted.", "metadata": {"id": "qx"}},
             {"text": "Storage space ran out on the volume.", "metadata": {"id": "space"}}]
    server.http.post("/v1/rag/ingest", json={"collection": "errors", "documents": extra}).raise_for_status()
    question = {"collection": "errors", "query": "what does QX-7731 mean", "top_k": 2}
    hybrid = server.http.post("/v1/rag/query", json={**question, "mode": "hybrid"}).json()["results"]
    assert hybrid[0]["metadata"] == {"id": "qx"}
    assert all(0.0 <= r["score"] <= 1.0 for r in hybrid)


def test_scores_are_in_unit_range_and_threshold_filters(server):
    everything = server.http.post("/v1/rag/query", json={"collection": "docs", "query": "borrowing costs went up",
                                                         "top_k": 10}).json()["results"]
    assert len(everything) == 4
    assert all(0.0 <= r["score"] <= 1.0 for r in everything)
    cut = (everything[0]["score"] + everything[1]["score"]) / 2
    kept = server.http.post("/v1/rag/query", json={"collection": "docs", "query": "borrowing costs went up",
                                                   "top_k": 10, "score_threshold": cut}).json()["results"]
    assert [r["metadata"]["id"] for r in kept] == ["rates"]
    assert server.http.post("/v1/rag/query", json={"collection": "docs", "query": "borrowing costs went up",
                                                   "score_threshold": 0.999}).json() == {"results": []}


def test_long_document_is_chunked_with_overlap(server):
    sentences = [f"Sentence number {i} talks about topic {i} in some detail." for i in range(40)]
    text = " ".join(sentences[:20]) + "\n\n" + " ".join(sentences[20:])
    answer = server.http.post("/v1/rag/ingest", json={"collection": "long", "chunk_size": 200, "chunk_overlap": 60,
                                                      "documents": [{"text": text, "metadata": {"doc": 1}}]}).json()
    expected = chunk_text(text, 200, 60)
    assert answer["chunks_created"] == len(expected) > 5
    found = server.http.post("/v1/rag/query", json={"collection": "long", "query": "topic 37",
                                                    "top_k": 50}).json()["results"]
    assert sorted(r["text"] for r in found) == sorted(expected)
    assert all(len(r["text"]) <= 200 and r["metadata"] == {"doc": 1} for r in found)


@pytest.mark.parametrize("body, fragment", [
    ({"collection": "x", "documents": [{"text": "hello"}], "chunk_size": 50, "chunk_overlap": 50}, "chunk_overlap"),
    ({"collection": "x", "documents": [{"text": "hello"}], "chunk_size": 50, "chunk_overlap": 80}, "chunk_overlap"),
    ({"collection": "x", "documents": []}, "documents"),
    ({"collection": "x", "documents": [{"text": "   "}]}, "empty"),
    ({"collection": "bad name!", "documents": [{"text": "hello"}]}, "collection"),
    ({"documents": [{"text": "hello"}]}, "collection"),
    ({"collection": "x", "documents": [{"text": "hello"}], "chunk_size": 0}, "chunk_size"),
])
def test_bad_ingest_is_422_in_runtime_shape_and_writes_nothing(server, body, fragment):
    answer = server.http.post("/v1/rag/ingest", json=body)
    assert answer.status_code == 422
    assert set(answer.json()) == {"detail"} and fragment in answer.json()["detail"]
    names = [c["name"] for c in server.http.get("/v1/rag/collections").json()["collections"]]
    assert names == ["docs"]


def test_query_errors(server):
    missing = server.http.post("/v1/rag/query", json={"collection": "nope", "query": "anything"})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    for body in ({"collection": "docs"}, {"collection": "docs", "query": ""},
                 {"collection": "docs", "query": "x", "top_k": 0},
                 {"collection": "docs", "query": "x", "score_threshold": 1.5},
                 {"collection": "docs", "query": "x", "mode": "magic"}):
        answer = server.http.post("/v1/rag/query", json=body)
        assert answer.status_code == 422, body
        assert "detail" in answer.json()


def test_collections_list_delete_and_survive_restart(server):
    listed = server.http.get("/v1/rag/collections").json()
    assert listed["count"] == 1
    assert listed["collections"][0] | {} == {**listed["collections"][0], "name": "docs", "documents": 4, "chunks": 4,
                                              "dimension": 384}
    server.restart()
    results = server.http.post("/v1/rag/query", json={"collection": "docs", "query": "kitty napping near a hearth",
                                                      "top_k": 1}).json()["results"]
    assert results[0]["metadata"] == {"id": "cat"}
    deleted = server.http.delete("/v1/rag/collections/docs")
    assert deleted.json() == {"status": "deleted", "collection": "docs", "chunks_deleted": 4}
    assert server.http.get("/v1/rag/collections").json() == {"collections": [], "count": 0}
    assert server.http.post("/v1/rag/query", json={"collection": "docs", "query": "x"}).status_code == 404
    assert server.http.delete("/v1/rag/collections/docs").status_code == 404


def test_agent_uses_rag_query_tool(server):
    server.http.post("/v1/agents", json={
        "name": "librarian", "tools": ["rag_query"], "memory": {"semantic": False},
        "model": {"provider": "scripted", "model": "lib", "script": [
            {"tool_call": {"name": "rag_query", "arguments": {"collection": "docs", "query": "borrowing costs went up",
                                                              "top_k": 1}}},
            {"reply": "Found: {tool_result}"}]}}).raise_for_status()
    body = server.http.post("/v1/agents/librarian/run", json={"query": "what about loans?"}).json()
    assert body["tool_calls"][0]["tool"] == "rag_query"
    assert "central bank" in body["response"]


def test_agent_ingests_with_rag_ingest_tool(server):
    server.http.post("/v1/agents", json={
        "name": "scribe", "tools": ["rag_ingest"], "memory": {"semantic": False},
        "model": {"provider": "scripted", "model": "s", "script": [
            {"tool_call": {"name": "rag_ingest", "arguments": {"collection": "notes",
                                                               "text": "The meeting moved to Thursday."}}},
            {"reply": "{tool_result}"}]}}).raise_for_status()
    server.http.post("/v1/agents/scribe/run", json={"query": "note it"}).raise_for_status()
    found = server.http.post("/v1/rag/query", json={"collection": "notes", "query": "when is the gathering?"}).json()
    assert found["results"][0]["text"] == "The meeting moved to Thursday."


def test_agent_knowledge_reaches_the_model(podium, fake_upstream):
    agent = {"name": "helper", "knowledge": ["docs"], "memory": {"semantic": False},
             "orchestration": {"pattern": "single"},
             "model": {"provider": "openai", "model": "fake-model", "base_url": fake_upstream.base_url,
                       "api_key": "sk-test"}}
    server = podium([agent])
    server.http.post("/v1/rag/ingest", json={"collection": "docs", "documents": CORPUS}).raise_for_status()
    server.http.post("/v1/agents/helper/run", json={"query": "borrowing costs went up"}).raise_for_status()
    system = fake_upstream.requests[-1]["messages"][0]
    assert system["role"] == "system"
    assert "Interest rates were raised by the central bank" in system["content"]
    assert "feline" not in system["content"]


def test_chunker_prefers_paragraphs_then_sentences():
    text = "Alpha one. Alpha two.\n\nBeta one is here now. Beta two is longer than the rest."
    assert chunk_text(text, 40, 0) == ["Alpha one. Alpha two.", "Beta one is here now.",
                                       "Beta two is longer than the rest."]
    assert chunk_text(text, 1000, 10) == [text]
    assert chunk_text("  \n ", 10, 2) == []


def test_chunker_overlap_stays_within_bounds():
    text = " ".join(f"word{i}" for i in range(300))
    chunks = chunk_text(text, 100, 30)
    assert all(len(c) <= 100 for c in chunks)
    for left, right in zip(chunks, chunks[1:]):
        shared = right.split(" ")[0]
        assert shared in left.split(" ")[-6:]  # the next chunk starts inside the previous one's tail
        assert len(left) - left.rindex(shared) <= 30
    assert chunks[-1].endswith("word299")
    assert chunk_text("x" * 25, 10, 3) == ["x" * 10] * 3 + ["x" * 4]


def test_chunker_refuses_overlap_not_below_size():
    with pytest.raises(Unprocessable):
        chunk_text("abc", 10, 10)


def test_openai_compatible_embedder_and_a_changed_embedder_is_refused(podium, fake_upstream):
    server = podium([ECHO], config={"embedder": "openai", "embedder_base_url": fake_upstream.base_url,
                                    "embedder_model": "fake-embed", "embedder_api_key": "sk-test"})
    server.http.post("/v1/rag/ingest", json={"collection": "remote", "documents": CORPUS}).raise_for_status()
    listed = server.http.get("/v1/rag/collections").json()["collections"][0]
    assert listed["embedder"] == "openai/fake-embed" and listed["dimension"] == 3
    results = server.http.post("/v1/rag/query", json={"collection": "remote", "query": "x"}).json()["results"]
    assert len(results) == 4 and all(0 <= r["score"] <= 1 for r in results)
    server.config["embedder"] = "local"
    server.restart()
    refused = server.http.post("/v1/rag/ingest", json={"collection": "remote", "documents": CORPUS})
    assert refused.status_code == 409 and "openai/fake-embed" in refused.json()["detail"]
    assert server.http.post("/v1/rag/query", json={"collection": "remote", "query": "x"}).status_code == 409


def test_no_embedder_answers_503(podium):
    server = podium([ECHO], config={"embedder": "none"})
    answer = server.http.post("/v1/rag/ingest", json={"collection": "c", "documents": CORPUS})
    assert answer.status_code == 503 and "embedder" in answer.json()["detail"]
    assert server.http.get("/v1/rag/collections").json()["count"] == 0
    server.http.post("/v1/agents/echo/run", json={"query": "hello"}).raise_for_status()


def test_concurrent_queries_share_the_embedder(server):
    # Requests arriving together are embedded in one batch; each must still get its own answer.
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda q: server.http.post("/v1/rag/query", json={
            "collection": "docs", "query": q, "top_k": 1}).json()["results"][0]["metadata"]["id"],
            list(QUESTIONS) * 2))
    assert answers == list(QUESTIONS.values()) * 2


def test_large_ingest_is_embedded_in_slices_in_order(server):
    # 300 documents span several embedding slices (128 texts each); every vector must land on
    # its own chunk, so each document's exact text finds itself first.
    topics = ["volcano", "violin", "glacier", "satellite", "orchard", "submarine", "desert", "library"]
    documents = [{"text": f"Note {i}: a short remark about the {topics[i % 8]} number {i}.", "metadata": {"i": i}}
                 for i in range(300)]
    answer = server.http.post("/v1/rag/ingest", json={"collection": "many", "documents": documents}).json()
    assert answer["chunks_created"] == 300
    for i in (0, 127, 128, 255, 256, 299):
        found = server.http.post("/v1/rag/query", json={"collection": "many", "query": documents[i]["text"],
                                                        "top_k": 1}).json()["results"]
        assert found[0]["metadata"] == {"i": i} and found[0]["score"] > 0.99


def test_a_collection_changed_through_another_server_is_queried_as_it_now_is(server):
    """Two servers on one database: what one ingests or deletes reaches the other's queries,
    though the other had the collection's vectors cached already."""
    from tests.conftest import Podium

    other = Podium(server.root.parent / "other", [ECHO], {"database_url": server.database_url}).start()
    try:
        def best(question: str) -> str:
            answer = other.http.post("/v1/rag/query", json={"collection": "docs", "query": question, "top_k": 1})
            assert answer.status_code == 200, answer.text
            return answer.json()["results"][0]["metadata"]["id"]

        assert best("a snake sheds its skin") != "snake"  # cached now, without it
        server.http.post("/v1/rag/ingest", json={"collection": "docs", "documents": [
            {"text": "The python slipped out of its old skin among the rocks.", "metadata": {"id": "snake"}},
        ]}).raise_for_status()
        assert best("a snake sheds its skin") == "snake"
        server.http.delete("/v1/rag/collections/docs").raise_for_status()
        server.http.post("/v1/rag/ingest", json={"collection": "docs", "documents": CORPUS[:1]}).raise_for_status()
        assert best("borrowing costs went up") == "cat"  # the collection as made again: one passage
    finally:
        other.stop()

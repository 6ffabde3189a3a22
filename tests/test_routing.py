"""Routing's own errors over real HTTP: a path no route has (404) and a method a path does not
take (405) answer in the error shape of the dialect the path belongs to."""

from __future__ import annotations

from tests.conftest import ECHO


def test_unknown_paths_and_methods_answer_in_their_dialects_shape(podium):
    http = podium([ECHO]).http
    console = http.get("/api/no-such-thing")
    assert console.status_code == 404 and console.json() == {"error": "no such path: /api/no-such-thing"}
    work = http.delete("/api/tasks")
    assert work.status_code == 405 and set(work.json()) == {"error"} and "DELETE" in work.json()["error"]
    assert "GET" in work.headers["allow"]
    chat = http.put("/chat", json={})
    assert chat.status_code == 405 and chat.json()["code"] == "METHOD_NOT_ALLOWED"
    assert chat.headers["allow"] == "POST"
    runtime = http.get("/v1/no-such-thing")
    assert runtime.status_code == 404 and runtime.json() == {"detail": "no such path: /v1/no-such-thing"}
    gateway = http.get("/v1/query")
    assert gateway.status_code == 405 and set(gateway.json()) == {"error"}
    openai = http.delete("/v1/chat/completions")
    assert openai.status_code == 405
    assert openai.json()["error"]["type"] == "invalid_request_error" and openai.json()["error"]["code"] == "method_not_allowed"
    model = http.get("/v1/models/echo/extra")
    assert model.status_code == 404 and model.json()["error"]["type"] == "not_found_error"
    # The routes themselves are untouched: the same paths answer their own methods.
    assert http.get("/api/tasks").status_code == 200
    assert http.post("/chat", json={"message": "hi", "sessionId": "s", "stream": False}).status_code == 200

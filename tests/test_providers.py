"""Providers over real HTTP: OpenAI-compatible and Anthropic upstreams, fallback, usage."""

from __future__ import annotations

import json

import pytest

from tests import fake_anthropic, fake_openai
from tests.fake_anthropic import FakeAnthropic
from tests.loopback import ClosingKeepAlive, free_port


def _openai_agent(name: str, base_url: str, **extra) -> dict:
    return {"name": name, "system_prompt": "You are {{ agent }}.", "tools": ["calculator"],
            "model": {"provider": "openai", "model": "fake-model", "base_url": base_url, "api_key": "sk-test"},
            **extra}


def test_openai_provider_streams_text_with_upstream_usage(podium, fake_upstream):
    fake_upstream.script = [{"text": "Paris is the capital"}]
    server = podium([_openai_agent("geo", fake_upstream.base_url)])
    body = server.http.post("/v1/agents/geo/run", json={"query": "capital of France?", "session_id": "p1"}).json()
    assert body["response"] == "Paris is the capital "
    assert body["usage"] == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    assert body["model"] == "openai/fake-model" and body["provider"] == "openai"
    sent = fake_upstream.requests[0]
    assert sent["model"] == "fake-model" and sent["stream"] is True
    assert sent["messages"] == [{"role": "system", "content": "You are geo."},
                                {"role": "user", "content": "capital of France?"}]
    assert sent["tools"][0]["function"]["name"] == "calculator"


def test_openai_tool_call_loop_sends_tool_result_back(podium, fake_upstream):
    fake_upstream.script = [{"tool_call": {"name": "calculator", "arguments": {"expression": "12*12"}}},
                            {"text": "It is 144"}]
    server = podium([_openai_agent("math", fake_upstream.base_url)])
    body = server.http.post("/v1/agents/math/run", json={"query": "12 squared"}).json()
    assert body["response"] == "It is 144 "
    assert body["tool_calls"][0]["tool"] == "calculator" and '"result": 144' in body["tool_calls"][0]["output"]
    second = fake_upstream.requests[1]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["function"]["name"] == "calculator"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_1"
    assert json.loads(second[-1]["content"])["result"] == 144
    assert body["usage"]["input_tokens"] == 22  # two upstream calls, 11 each


def test_history_is_sent_on_the_next_turn(podium, fake_upstream):
    fake_upstream.script = [{"text": "first answer"}]
    server = podium([_openai_agent("geo", fake_upstream.base_url)])
    server.http.post("/chat", json={"message": "one", "sessionId": "h", "stream": False, "agent": "geo"})
    server.http.post("/chat", json={"message": "two", "sessionId": "h", "stream": False, "agent": "geo"})
    assert [m["content"] for m in fake_upstream.requests[1]["messages"]] == [
        "You are geo.", "one", "first answer ", "two"]


@pytest.mark.parametrize("failure", ["refused", "500"])
def test_fallback_to_next_candidate(podium, fake_upstream, failure):
    if failure == "refused":
        primary_url = f"http://127.0.0.1:{free_port()}/v1"
    else:
        fake_upstream.script = [{"status": 500}, {"text": "from fallback"}]
        primary_url = fake_upstream.base_url
    agent = {"name": "fb", "model": {
        "primary": {"provider": "openai", "model": "primary", "base_url": primary_url},
        "fallback": [{"provider": "openai", "model": "secondary", "base_url": fake_upstream.base_url}]}}
    if failure == "refused":
        fake_upstream.script = [{"text": "from fallback"}]
    server = podium([agent], {"resilience": {"retries": 0}})  # a retry of the 500 would let primary answer
    body = server.http.post("/v1/agents/fb/run", json={"query": "hi", "session_id": "fb1"}).json()
    assert body["response"] == "from fallback "
    assert body["model"] == "openai/secondary"


def test_all_candidates_down_is_503(podium):
    port = free_port()
    agent = {"name": "dead", "model": {
        "primary": {"provider": "openai", "model": "a", "base_url": f"http://127.0.0.1:{port}/v1"},
        "fallback": {"provider": "ollama", "model": "b", "base_url": f"http://127.0.0.1:{port}/v1"}}}
    server = podium([agent])
    response = server.http.post("/v1/agents/dead/run", json={"query": "hi"})
    assert response.status_code == 503
    chat = server.http.post("/chat", json={"message": "hi", "sessionId": "d", "agent": "dead", "stream": False})
    assert chat.status_code == 503 and chat.json()["code"] == "PROVIDERS_UNAVAILABLE"


def test_anthropic_provider_text_and_tool_use(podium):
    upstream = FakeAnthropic().start()
    try:
        agent = {"name": "claude", "system_prompt": "Be exact.", "tools": ["calculator"],
                 "model": {"provider": "anthropic", "model": "claude-test", "base_url": upstream.base_url,
                           "api_key": "sk-ant-test"}}
        server = podium([agent])
        body = server.http.post("/v1/agents/claude/run", json={"query": "three squared"}).json()
    finally:
        upstream.stop()
    assert body["tool_calls"][0]["input"] == {"expression": "3*3"}
    assert '"result": 9' in body["tool_calls"][0]["output"]
    assert body["response"] == "Hello from Claude"
    assert body["provider"] == "anthropic" and body["usage"]["input_tokens"] == 42
    first, second = upstream.requests
    assert first["system"] == "Be exact." and first["tools"][0]["input_schema"]["type"] == "object"
    assert second["messages"][-1]["content"][0]["type"] == "tool_result"
    assert second["messages"][-1]["content"][0]["tool_use_id"] == "toolu_1"


def test_openai_provider_takes_its_proxy_from_the_environment_once(monkeypatch):
    from podium.runtime.providers.openai import OpenAIProvider

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")

    def build(url):
        return OpenAIProvider("m", base_url=url, api_key=None, session=lambda: None)

    assert build("https://api.openai.com/v1").proxy == "http://proxy.internal:3128"
    assert build("http://127.0.0.1:11434/v1").proxy is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert build("https://api.openai.com/v1").proxy is None


def _decode(body: bytes, piece: int) -> list:
    """Feed a chat-completion event stream to the decoder `piece` bytes at a time."""
    from podium.runtime.providers.base import ModelRequest
    from podium.runtime.providers.openai import CompletionStream

    decoder = CompletionStream(ModelRequest(messages=[{"role": "user", "content": "12345678"}]))
    events = []
    for at in range(0, len(body), piece):
        events += decoder.feed(body[at:at + piece])
    return events + decoder.close()


def _sse(*chunks: object, done: bool = True, newline: bytes = b"\n") -> bytes:
    lines = [b"data: " + (c if isinstance(c, bytes) else json.dumps(c).encode()) for c in chunks]
    lines += [b"data: [DONE]"] if done else []
    return b"".join(line + newline + newline for line in lines)


@pytest.mark.parametrize("piece", [1, 7, 10_000])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_completion_stream_decodes_whatever_the_reads_and_line_ends(piece, newline):
    from podium.runtime.events import TextDelta, ToolCall, Usage

    body = _sse({"choices": [{"delta": {"content": "Héllo"}}]},
                {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "calc",
                                                                                             "arguments": '{"a":'}}]}}]},
                {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}}]},
                {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}, newline=newline)
    events = _decode(body + _sse({"choices": [{"delta": {"content": "after done"}}]}, done=False), piece)
    assert events == [TextDelta("Héllo"), ToolCall(id="c1", name="calc", input={"a": 1}), Usage(9, 4)]


def test_completion_stream_estimates_usage_and_keeps_a_last_unterminated_line():
    from podium.runtime.events import TextDelta, Usage

    events = _decode(_sse({"choices": [{"delta": {"content": "abcdefgh"}}]}, done=False).rstrip(b"\n"), 5)
    assert events == [TextDelta("abcdefgh"), Usage(2, 2)]  # about four characters a token


@pytest.mark.parametrize("body, says", [
    (_sse(b"{not json"), "malformed event: {not json"),
    (_sse(b"\xff\xfe"), "malformed event"),
    (_sse({"error": {"message": "overloaded"}}), "failed mid-stream: overloaded"),
])
def test_completion_stream_refuses_malformed_and_error_events(body, says):
    from podium.errors import ProviderError

    with pytest.raises(ProviderError, match=says):
        _decode(body, 3)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_pooled_connection_the_upstream_closes_as_it_is_reused_is_retried_on_a_new_one(podium, provider):
    """A server may close an idle keep-alive connection just as a request goes out on it; the
    request then gets no answer at all. That request is sent again on a new connection, so the
    run succeeds."""
    answer, base = {"openai": (fake_openai.ANSWER, "/v1"), "anthropic": (fake_anthropic.ANSWER, "")}[provider]
    upstream = ClosingKeepAlive(answer).start()
    try:
        agent = {"name": "geo", "model": {"provider": provider, "model": "fake-model", "base_url": upstream.url + base,
                                          "api_key": "sk-test"}}
        server = podium([agent])
        answers = [server.http.post("/v1/agents/geo/run", json={"query": f"question {i}"}) for i in range(3)]
    finally:
        upstream.stop()
    assert [(a.status_code, a.json().get("response")) for a in answers] == [(200, "hello")] * 3, answers[1].text
    # The second and third runs each met the connection the one before left in the pool.
    assert (upstream.connections, upstream.answered, upstream.dropped) == (3, 3, 2)

"""The OpenAI dialect, driven by the official `openai` SDK."""

from __future__ import annotations

import openai
import pytest

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
DOWN = {"name": "down", "model": {"provider": "scripted", "model": "a", "script": [{"fail": "boom"}]}}


@pytest.fixture
def client(podium):
    server = podium([ECHO, DOWN])
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    yield sdk, server
    sdk.close()


def test_models_lists_agents(client):
    sdk, _ = client
    assert sorted(m.id for m in sdk.models.list()) == ["down", "echo"]


def test_completion_blocking(client):
    sdk, server = client
    completion = sdk.chat.completions.create(model="echo", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}])
    assert completion.choices[0].message.content == "hello world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    # Recorded like every other run, in a session named after the completion.
    history = server.http.get(f"/chat/{completion.id}").json()["messages"]
    assert [m["content"] for m in history] == ["hello world", "hello world"]


def test_completion_streaming(client):
    sdk, _ = client
    stream = sdk.chat.completions.create(model="echo", stream=True,
                                         messages=[{"role": "user", "content": "one two three"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == 3


def test_conversation_comes_from_request(client):
    sdk, server = client
    sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "first"}])
    second = sdk.chat.completions.create(model="echo", messages=[
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": [{"type": "text", "text": "latest"}]}])
    assert second.choices[0].message.content == "latest"


def test_sdk_raises_matching_exceptions(client):
    sdk, _ = client
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="ghost", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.body["type"] == "not_found_error"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="echo", messages=[])
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="echo", messages=[{"role": "system", "content": "no user"}])
    with pytest.raises(openai.InternalServerError) as unavailable:
        sdk.chat.completions.create(model="down", messages=[{"role": "user", "content": "x"}])
    assert unavailable.value.status_code == 503
    assert unavailable.value.body["message"] == "all providers unavailable"

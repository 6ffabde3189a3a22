"""Providers under failure, over real HTTP: routing strategies, retries, Retry-After, circuit
breakers. Fake OpenAI-compatible upstreams fail, stall and answer 429."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI

FAST = {"resilience": {"retries": 0, "backoff_base": 0.0}}


@pytest.fixture
def upstreams() -> Iterator[list[FakeOpenAI]]:
    ups = [FakeOpenAI().start(), FakeOpenAI().start()]
    yield ups
    for up in ups:
        up.stop()


def ref(up: FakeOpenAI, model: str = "fake-model") -> dict[str, Any]:
    return {"provider": "openai", "model": model, "base_url": up.base_url, "api_key": "sk-test"}


def agent(name: str, primary: dict[str, Any], *fallback: dict[str, Any], routing: str = "priority",
          **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": {"primary": primary, "fallback": list(fallback), "routing": routing},
            "orchestration": {"pattern": "single"}, **extra}


def attempts(server: Any, session: str) -> list[list[dict[str, Any]]]:
    """The `attempts` of every turn of a session, oldest first, read from the real database."""
    # Turns of one millisecond keep their order by their messages' autoincrement ids.
    rows = server.query("select attempts from turns t where session_id = :sid order by created_at, "
                        "(select min(id) from messages m where m.turn_id = t.id)", sid=session)
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]


def ask(server: Any, session: str, agent_name: str | None = None) -> Any:
    return server.http.post("/v1/query", json={"prompt": "hi", "session": session,
                                               **({"agent": agent_name} if agent_name else {})})


def test_fallback_in_priority_order_with_retries_recorded(podium, upstreams):
    up1, up2 = upstreams
    up1.script = [{"status": 500}]
    up2.script = [{"text": "from second"}]
    server = podium([agent("a", ref(up1), ref(up2))],
                    {"resilience": {"retries": 1, "backoff_base": 0.01}})
    response = ask(server, "s")
    assert response.status_code == 200, response.text
    assert response.json()["response"].strip() == "from second"
    assert len(up1.requests) == 2 and len(up2.requests) == 1  # one retry on 500, then fallback
    (turn,) = attempts(server, "s")
    assert [(e["model"], e.get("ok"), e["reason"]) for e in turn if "ok" in e] == [
        ("openai/fake-model", False, "primary"), ("openai/fake-model", False, "primary"),
        ("openai/fake-model", True, "fallback 1")]
    retry = next(e for e in turn if "retry_in" in e)
    assert retry["retry_reason"].startswith("backoff") and retry["strategy"] == "priority"


def test_retry_after_is_honoured(podium, upstreams):
    up1, _ = upstreams
    up1.script = [{"status": 429, "retry_after": 1}, {"text": "after waiting"}]
    server = podium([agent("a", ref(up1))], {"resilience": {"retries": 2, "backoff_base": 0.0}})
    response = ask(server, "s")
    assert response.json()["response"].strip() == "after waiting"
    (turn,) = attempts(server, "s")
    retry = next(e for e in turn if "retry_in" in e)
    assert retry["retry_in"] == 1 and retry["retry_reason"].startswith("Retry-After")


def test_retry_after_longer_than_backoff_max_moves_to_next_candidate(podium, upstreams):
    up1, up2 = upstreams
    up1.script = [{"status": 429, "retry_after": 120}]
    up2.script = [{"text": "second"}]
    server = podium([agent("a", ref(up1), ref(up2))], {"resilience": {"retries": 3, "backoff_max": 5}})
    assert ask(server, "s").json()["response"].strip() == "second"
    assert len(up1.requests) == 1  # never retried sooner than the upstream asked


def test_breaker_opens_then_half_open_trial_closes_it(podium, upstreams):
    up1, up2 = upstreams
    up1.script = [{"status": 500}, {"status": 500}, {"status": 500}, {"text": "primary back"}]
    up2.script = [{"text": "fallback"}]
    config = {"resilience": {"retries": 0, "breaker_threshold": 2, "breaker_cooldown": 0}}
    server = podium([agent("a", ref(up1), ref(up2))], config)
    endpoint = f"openai@127.0.0.1:{up1.port}"

    def state() -> str:
        breakers = server.http.get("/api/breaker/status").json()["breakers"]
        return next(b["state"] for b in breakers if b["endpoint"] == endpoint)

    assert ask(server, "s").json()["response"].strip() == "fallback"
    assert state() == "closed"
    assert ask(server, "s").json()["response"].strip() == "fallback"
    assert state() == "open"  # two consecutive failures
    # Cool-down 0: the next call is the half-open trial; it fails and the breaker opens again.
    assert ask(server, "s").json()["response"].strip() == "fallback"
    assert state() == "open"
    assert ask(server, "s").json()["response"].strip() == "primary back"
    assert state() == "closed"
    assert len(up1.requests) == 4


def test_open_breaker_is_skipped_and_reset_by_console(podium, upstreams):
    up1, up2 = upstreams
    up1.script = [{"status": 503}, {"text": "primary again"}]
    up2.script = [{"text": "fallback"}]
    config = {"resilience": {"retries": 0, "breaker_threshold": 1, "breaker_cooldown": 3600}}
    server = podium([agent("a", ref(up1), ref(up2))], config)
    assert ask(server, "s").json()["response"].strip() == "fallback"
    assert ask(server, "s").json()["response"].strip() == "fallback"
    assert len(up1.requests) == 1  # open: not called again
    skipped = [e for e in attempts(server, "s")[1] if "skipped" in e]
    assert skipped and skipped[0]["skipped"].startswith("circuit open")
    reset = server.http.post("/api/breaker/reset/openai").json()
    assert sorted(reset["reset"]) == sorted(f"openai@127.0.0.1:{u.port}" for u in upstreams)
    assert ask(server, "s").json()["response"].strip() == "primary again"
    statuses = server.http.get("/api/breaker/status").json()["breakers"]
    assert all(b["state"] == "closed" for b in statuses)


def test_cost_optimized_prefers_cheaper_and_config_prices_override(podium, upstreams):
    up1, up2 = upstreams
    up1.script, up2.script = [{"text": "expensive"}], [{"text": "cheap"}]
    spec = agent("a", ref(up1, "gpt-4o"), ref(up2, "gpt-4o-mini"), routing="cost_optimized")
    server = podium([spec])
    assert ask(server, "s").json()["response"].strip() == "cheap"
    (turn,) = attempts(server, "s")
    assert turn[0]["strategy"] == "cost_optimized" and "USD per million" in turn[0]["reason"]
    free = {"prices": {"openai/gpt-4o": {"input_per_mtok": 0, "output_per_mtok": 0}}}
    assert ask(podium([spec], free), "s").json()["response"].strip() == "expensive"


def test_round_robin_rotates(podium, upstreams):
    up1, up2 = upstreams
    up1.script, up2.script = [{"text": "one"}], [{"text": "two"}]
    server = podium([agent("a", ref(up1), ref(up2), routing="round_robin")])
    answers = [ask(server, f"s{i}").json()["response"].strip() for i in range(4)]
    assert answers == ["one", "two", "one", "two"]


def test_latency_optimized_prefers_the_faster_after_measuring(podium, upstreams):
    up1, up2 = upstreams
    up1.script = [{"stall": 0.5, "text": "slow"}]
    up2.script = [{"text": "fast"}]
    server = podium([agent("a", ref(up1), ref(up2), routing="latency_optimized")])
    first = [ask(server, f"s{i}").json()["response"].strip() for i in range(2)]
    assert first == ["slow", "fast"]  # each unmeasured candidate is measured once
    assert ask(server, "s2").json()["response"].strip() == "fast"
    (turn,) = attempts(server, "s2")
    assert turn[0]["reason"].startswith("average latency")


def test_capability_match_skips_candidates_without_tools(podium, upstreams):
    up1, _ = upstreams
    up1.script = [{"tool_call": {"name": "calculator", "arguments": {"expression": "2+3"}}},
                  {"text": "five"}]
    spec = {"name": "a", "tools": ["calculator"], "orchestration": {"pattern": "react"},
            "model": {"primary": "local/smollm2-135m", "fallback": [ref(up1)], "routing": "capability_match"}}
    server = podium([spec])
    response = ask(server, "s")
    assert response.json()["response"].strip() == "five"
    turn = attempts(server, "s")[0]
    assert turn[0] == {"model": "local/smollm2-135m", "ok": False, "strategy": "capability_match",
                       "skipped": "cannot call tools and the request offers tools"}


def test_a_request_every_model_refuses_is_the_clients_400_and_one_that_fails_elsewhere_stays_503(podium, upstreams):
    up1, up2 = upstreams
    up1.script = [{"status": 400}, {"status": 400}]
    up2.script = [{"status": 400}, {"status": 500}]
    server = podium([agent("a", ref(up1), ref(up2))], FAST)
    refused = ask(server, "s")
    # Both candidates were asked (another model might have taken it), neither retried a 400.
    assert refused.status_code == 400, refused.text
    assert "refused by the model" in refused.json()["error"] and len(up1.requests) == len(up2.requests) == 1
    unavailable = ask(server, "t")  # refused by the first, failed at the second: not the client's fault
    assert unavailable.status_code == 503, unavailable.text
    # Both runs are recorded as failed turns, each with both attempts.
    assert [[e.get("ok") for e in turn if "ok" in e] for turn in attempts(server, "s") + attempts(server, "t")] == [
        [False, False], [False, False]]

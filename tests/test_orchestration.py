"""Orchestration patterns, run through the real server with scripted models."""

from __future__ import annotations

from podium.runtime.agent import AgentSpec
from podium.runtime.loop import choose_agent


def _scripted(name: str, script: list, **extra) -> dict:
    return {"name": name, "model": {"provider": "scripted", "model": name, "script": script}, **extra}


def test_react_stops_at_max_iterations_and_still_answers(podium):
    loop = _scripted("looper", [{"tool_call": {"name": "calculator", "arguments": {"expression": "1+1"}}}] * 2
                     + [{"reply": "gave up after {tool_result}"}], tools=["calculator"],
                     orchestration={"pattern": "react", "max_iterations": 2})
    body = podium([loop]).http.post("/v1/agents/looper/run", json={"query": "go"}).json()
    assert len(body["tool_calls"]) == 2
    # The third call is made without tools, so the model has to answer.
    assert body["response"] == 'gave up after {"expression": "1+1", "result": 2}'


def test_single_pattern_offers_no_tools(podium, fake_upstream):
    agent = {"name": "one", "tools": ["calculator"], "orchestration": {"pattern": "single"},
             "model": {"provider": "openai", "model": "m", "base_url": fake_upstream.base_url}}
    podium([agent]).http.post("/v1/agents/one/run", json={"query": "x"})
    assert "tools" not in fake_upstream.requests[0]


def test_plan_and_execute_plans_silently_then_answers(podium):
    agent = _scripted("planner", [{"reply": "1. think 2. answer"}, {"reply": "final answer"}],
                      orchestration={"pattern": "plan_and_execute"})
    body = podium([agent]).http.post("/v1/agents/planner/run", json={"query": "do it"}).json()
    assert body["response"] == "final answer"
    assert body["usage"]["output_tokens"] > 2  # the plan's tokens count too


def test_router_delegates_through_tools(podium):
    router = _scripted("boss", [{"tool_call": {"name": "echo", "arguments": {"request": "ping"}}},
                                {"reply": "Router says {tool_result}"}],
                       orchestration={"pattern": "router", "agents": ["echo"]})
    echo = {"name": "echo", "model": "scripted/echo", "description": "repeats"}
    server = podium([router, echo])
    body = server.http.post("/v1/agents/boss/run", json={"query": "hello", "session_id": "rt"}).json()
    assert body["response"] == "Router says ping"
    assert body["tool_calls"] == [{"tool": "echo", "input": {"request": "ping"}, "output": "ping"}]


def test_choose_agent_by_description_words():
    helpers = [AgentSpec(name="personal-assistant", description="everyday questions, plans and reminders"),
               AgentSpec(name="research-helper", description="research tasks, explains topics, compares sources")]
    assert choose_agent("Please research quantum topics", helpers).name == "research-helper"
    assert choose_agent("Set reminders for tomorrow", helpers).name == "personal-assistant"
    assert choose_agent("Hello", helpers).name == "personal-assistant"  # no overlap: the first listed

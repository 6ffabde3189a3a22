"""The agent loop: one run of one agent through its orchestration pattern, as named steps.

The loop emits run events as they happen and keeps the figures a turn records; it knows
nothing of HTTP, dialects or the database.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from podium.errors import BadRequest, ProviderError, ProvidersUnavailable
from podium.runtime import prompts
from podium.runtime.agent import AgentSpec, ModelConfig, ModelRef
from podium.runtime.events import RunEvent, TextDelta, ToolCall, ToolCallRecord, ToolResult, Usage
from podium.runtime.providers.base import ModelRequest, last_content
from podium.runtime.providers.pool import ProviderPool
from podium.runtime.response_cache import ResponseCache
from podium.runtime.retry import is_refusal
from podium.runtime.routing import ModelRouter
from podium.runtime.tools.base import ToolContext, ToolRegistry


class AgentCatalog(Protocol):
    """Where the router pattern finds the agents it delegates to."""

    def find(self, name: str) -> AgentSpec | None: ...

    def names(self) -> list[str]: ...


@dataclass
class RunState:
    """The mutable state of one run: its conversation and the figures its turn records."""

    spec: AgentSpec
    session_id: str
    messages: list[dict[str, Any]]
    emit: Callable[[RunEvent], None]
    tool_context: ToolContext
    usage: Usage = field(default_factory=Usage)
    model_ms: float = 0.0
    tool_ms: float = 0.0
    tool_records: list[ToolCallRecord] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    provider: str | None = None
    answer: str = ""
    last_request: list[dict[str, Any]] | None = None
    # The run's orchestration timeout (an asyncio.Timeout); approvals pause it while a person decides.
    deadline: Any = None
    # What a before-run hook leaves for its after-run hook (memory: the user message's vector).
    hook_data: dict[str, Any] = field(default_factory=dict)


class AgentLoop:
    """Runs agents; one instance serves the whole server."""

    def __init__(self, providers: ProviderPool, tools: ToolRegistry, catalog: AgentCatalog,
                 default_model: ModelConfig, router: ModelRouter | None = None, *,
                 tracer: trace.Tracer | None = None, cache: ResponseCache | None = None) -> None:
        self.providers = providers
        self.tracer = tracer or trace.NoOpTracer()
        self.cache = cache
        self.tools = tools
        self.catalog = catalog
        self.default_model = default_model
        self.router = router or ModelRouter()
        # Asked before each tool call; a text answer replaces the tool's result (approvals).
        self.tool_gate: Callable[[RunState, ToolCall], Awaitable[str | None]] | None = None

    async def run(self, state: RunState) -> None:
        pattern = state.spec.orchestration.pattern
        step = {"single": self._single, "react": self._react,
                "plan_and_execute": self._plan_and_execute, "router": self._router}[pattern]
        await step(state)

    # -- patterns -----------------------------------------------------------------------

    async def _single(self, state: RunState) -> None:
        state.answer, _ = await self._call_model(state, tools=[])

    async def _react(self, state: RunState, max_iterations: int | None = None) -> None:
        tools = self.tools.specs(state.spec.tools)
        for _ in range(max_iterations or state.spec.orchestration.max_iterations):
            text, calls = await self._call_model(state, tools)
            if not calls:
                state.answer = text
                return
            await self._run_tools(state, text, calls)
        # Out of iterations: one last call without tools so the user still gets an answer.
        state.answer, _ = await self._call_model(state, tools=[])

    async def _plan_and_execute(self, state: RunState) -> None:
        plan, _ = await self._call_model(state, tools=[], extra_system=(
            "First write a short numbered plan for the request. Do not answer it yet."), silent=True)
        # The plan joins the conversation as the assistant's own words, then the loop acts on it.
        state.messages.append({"role": "assistant", "content": plan})
        state.messages.append({"role": "system", "content": "Now carry out the plan and answer the request."})
        await self._react(state)

    async def _router(self, state: RunState) -> None:
        names = [n for n in (state.spec.orchestration.agents or self.catalog.names()) if n != state.spec.name]
        targets = [spec for n in names if (spec := self.catalog.find(n)) is not None]
        if not targets:
            await self._react(state)
            return
        model = self._model_config(state.spec)
        if self.providers.get(model.primary).supports_tools:
            await self._route_with_tools(state, targets)
        else:
            await self._delegate(state, choose_agent(last_content(state.messages, "user"), targets))

    async def _route_with_tools(self, state: RunState, targets: list[AgentSpec]) -> None:
        tools = [{"name": t.name, "description": f"Delegate to {t.name}: {t.description}",
                  "parameters": {"type": "object", "properties": {"request": {"type": "string"}},
                                 "required": ["request"]}} for t in targets]
        by_name = {t.name: t for t in targets}
        for _ in range(state.spec.orchestration.max_iterations):
            text, calls = await self._call_model(state, tools)
            if not calls:
                state.answer = text
                return
            state.messages.append(_assistant_with_calls(text, calls))
            for call in calls:
                target = by_name.get(call.name)
                state.emit(call)
                started = time.perf_counter()
                if target is None:
                    output, is_error = f"no agent named {call.name}", True
                else:
                    output, is_error = await self._sub_answer(state, target, str(call.input.get("request", ""))), False
                self._record_tool(state, call, output, is_error, (time.perf_counter() - started) * 1000)
        state.answer, _ = await self._call_model(state, tools=[])

    async def _delegate(self, state: RunState, target: AgentSpec) -> None:
        """Let another agent answer the whole request, streaming its answer as ours."""
        sub = RunState(spec=target, session_id=state.session_id, emit=state.emit,
                       tool_context=state.tool_context,
                       messages=[self.system_message(target, state.session_id), *state.messages[1:]])
        await self.run(sub)
        _merge(state, sub)
        state.answer = sub.answer

    async def _sub_answer(self, state: RunState, target: AgentSpec, request: str) -> str:
        sub = RunState(spec=target, session_id=state.session_id, emit=lambda _e: None,
                       tool_context=state.tool_context,
                       messages=[self.system_message(target, state.session_id), {"role": "user", "content": request}])
        await self.run(sub)
        _merge(state, sub)
        return sub.answer

    # -- steps --------------------------------------------------------------------------

    def system_message(self, spec: AgentSpec, session_id: str) -> dict[str, Any]:
        content = prompts.render(spec.system_prompt, {"agent": spec.name, "session_id": session_id,
                                                      "description": spec.description})
        return {"role": "system", "content": content}

    def _model_config(self, spec: AgentSpec) -> ModelConfig:
        return spec.model or self.default_model

    async def _call_model(self, state: RunState, tools: list[dict[str, Any]], *,
                          extra_system: str | None = None, silent: bool = False) -> tuple[str, list[ToolCall]]:
        """One model call, trying candidates in routing order until one answers."""
        messages = state.messages + ([{"role": "system", "content": extra_system}] if extra_system else [])
        config = self._model_config(state.spec)
        # The router orders candidates (and says why), skips open breakers, retries 429/5xx.
        plan = self.router.plan(config, needs_tools=bool(tools),
                                capable=lambda ref: self.providers.get(ref).supports_tools)
        state.attempts += plan.skipped
        failures = [f"{s['model']}: {s['skipped']}" for s in plan.skipped]
        refusals = 0
        for ref, reason in plan.ranked:
            mark = len(state.attempts)
            try:
                return await self.router.call(ref, lambda: self._attempt(state, ref, messages, tools, silent),
                                              state.attempts.append)
            except ProviderError as exc:
                failures.append(f"{ref.label}: {exc}")
                refusals += is_refusal(exc)
            finally:
                for entry in state.attempts[mark:]:
                    entry.setdefault("strategy", plan.strategy)
                    entry.setdefault("reason", reason)
        if plan.ranked and refusals == len(plan.ranked):
            # Every model that was asked answered that the request is wrong: the client's to fix.
            raise BadRequest(f"the request was refused by the model: {failures[-1]}", hint="; ".join(failures))
        raise ProvidersUnavailable("all providers unavailable", hint="; ".join(failures),
                                   retry_after=self.router.retry_after(config))

    async def _attempt(self, state: RunState, ref: ModelRef, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]], silent: bool) -> tuple[str, list[ToolCall]]:
        """One provider attempt as an `llm.call` span; answered from the response cache when on."""
        with self.tracer.start_as_current_span("llm.call", attributes={
                "agent": state.spec.name, "session_id": state.session_id, "provider": ref.provider,
                "model": ref.label}) as span:
            key = self.cache.key(state.spec, ref, messages, tools) if self.cache is not None else None
            cached = self.cache.get(key) if key is not None and self.cache is not None else None
            if cached is not None:
                span.set_attribute("cache", "hit")
                return self._replay(state, ref, messages, cached.text, cached.calls, silent)
            before = (state.usage.input_tokens, state.usage.output_tokens)
            text, calls = await self._provider_attempt(state, ref, messages, tools, silent)
            used = (state.usage.input_tokens - before[0], state.usage.output_tokens - before[1])
            # Per-attempt tokens let the turn's cost be priced per model, fallbacks included.
            state.attempts[-1].update(input_tokens=used[0], output_tokens=used[1],
                                      **({"cache": "miss"} if key is not None else {}))
            span.set_attributes({"input_tokens": used[0], "output_tokens": used[1]})
            if key is not None and self.cache is not None:
                self.cache.put(key, state.spec.cache.ttl_seconds, text, calls)
            return text, calls

    def _replay(self, state: RunState, ref: ModelRef, messages: list[dict[str, Any]], text: str,
                calls: list[ToolCall], silent: bool) -> tuple[str, list[ToolCall]]:
        if text and not silent:
            state.emit(TextDelta(text))
        state.attempts.append({"model": ref.label, "ok": True, "ms": 0.0, "cache": "hit",
                               "input_tokens": 0, "output_tokens": 0})
        state.model, state.provider, state.last_request = ref.label, ref.provider, messages
        return text, list(calls)

    async def _provider_attempt(self, state: RunState, ref: ModelRef, messages: list[dict[str, Any]],
                                tools: list[dict[str, Any]], silent: bool) -> tuple[str, list[ToolCall]]:
        provider = self.providers.get(ref)
        request = ModelRequest(messages=messages, tools=tools if provider.supports_tools else [],
                               max_tokens=ref.max_tokens, temperature=ref.temperature)
        started = time.perf_counter()
        text: list[str] = []
        calls: list[ToolCall] = []
        try:
            async for event in provider.stream(request):
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    if not silent:
                        state.emit(event)
                elif isinstance(event, ToolCall):
                    calls.append(event)
                else:
                    state.usage.add(event)
                    state.emit(event)
        except ProviderError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            state.attempts.append({"model": ref.label, "ok": False, "error": str(exc), "ms": round(elapsed, 2)})
            if text and not silent:
                # Half an answer already reached the client; a second model cannot continue it.
                raise ProvidersUnavailable(f"{ref.label} failed mid-answer: {exc}") from exc
            raise
        elapsed = (time.perf_counter() - started) * 1000
        state.model_ms += elapsed
        state.attempts.append({"model": ref.label, "ok": True, "ms": round(elapsed, 2)})
        state.model, state.provider, state.last_request = ref.label, ref.provider, messages
        return "".join(text), calls

    async def _run_tools(self, state: RunState, text: str, calls: list[ToolCall]) -> None:
        state.messages.append(_assistant_with_calls(text, calls))
        for call in calls:
            state.emit(call)
            denied = await self.tool_gate(state, call) if self.tool_gate else None
            if denied is not None:
                self._record_tool(state, call, denied, True, 0.0)
                continue
            with self.tracer.start_as_current_span("tool.execute", attributes={
                    "agent": state.spec.name, "session_id": state.session_id, "tool": call.name,
                    "tool.call_id": call.id}) as span:
                outcome = await self.tools.execute(call.name, call.input, state.tool_context)
                if outcome.is_error:
                    span.set_status(Status(StatusCode.ERROR, outcome.text[:200]))
            self._record_tool(state, call, outcome.text, outcome.is_error, outcome.duration_ms)

    def _record_tool(self, state: RunState, call: ToolCall, output: str, is_error: bool, ms: float) -> None:
        state.tool_ms += ms
        state.messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
        state.tool_records.append(ToolCallRecord(call.id, call.name, call.input, output, is_error, ms))
        state.emit(ToolResult(call.id, call.name, output, is_error, ms))


def _assistant_with_calls(text: str, calls: list[ToolCall]) -> dict[str, Any]:
    return {"role": "assistant", "content": text or None, "tool_calls": [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.input)}}
        for c in calls]}


def _merge(state: RunState, sub: RunState) -> None:
    state.usage.add(sub.usage)
    state.model_ms += sub.model_ms
    state.tool_ms += sub.tool_ms
    state.tool_records += sub.tool_records
    state.attempts += sub.attempts
    state.model, state.provider = sub.model or state.model, sub.provider or state.provider
    state.last_request = sub.last_request or state.last_request


_WORD = re.compile(r"[a-z0-9]+")


def choose_agent(request: str, targets: list[AgentSpec]) -> AgentSpec:
    """Pick the agent whose name and description share most words with the request.

    Used when the router's model cannot call tools (the local model); ties go to the first
    listed agent, so the order in `orchestration.agents` sets the default.
    """
    words = {w for w in _WORD.findall(request.lower()) if len(w) > 3}  # skip "a", "the", "and"

    def score(spec: AgentSpec) -> int:
        return len(words & set(_WORD.findall(f"{spec.name.replace('-', ' ')} {spec.description}".lower())))

    return max(targets, key=score)  # max keeps the first of equal scores

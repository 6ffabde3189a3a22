"""The context observatory: what each turn sent to the model, what it called, why it chose
its model, heuristic tips, session insights, and LLM-powered analyses of turns and sessions."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

from podium.errors import NotFound, ProviderError, ProvidersUnavailable, SessionNotFound
from podium.runtime.agent import ModelConfig, ModelRef
from podium.runtime.events import TextDelta, Usage
from podium.runtime.providers.base import ModelRequest, approx_tokens
from podium.services.metrics import answered

# Context windows in tokens, by model-name prefix (longest match wins); unknown models get 8k.
CONTEXT_WINDOWS = {"gpt-4.1": 1_047_576, "gpt-4o": 128_000, "gpt-4": 8_192, "gpt-3.5": 16_385, "o1": 200_000,
                   "o3": 200_000, "o4": 200_000, "claude": 200_000, "llama": 128_000, "qwen": 32_768,
                   "mistral": 32_768, "smollm2": 8_192}
DEFAULT_WINDOW = 8_192
NEAR_LIMIT = 0.8
SLOW_MS = 10_000
MANY_TOOL_CALLS = 6
EXPENSIVE_USD = 0.05
ANALYST = ("You review one AI agent's work for its operator. Be concrete and brief: what went well, what "
           "went wrong, and up to three changes (prompt, tools, model, settings) that would help.")


def context_window(model: str | None) -> int:
    name = (model or "").partition("/")[2].lower() or (model or "").lower()
    matches = [k for k in CONTEXT_WINDOWS if name.startswith(k)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else DEFAULT_WINDOW


def context_tokens(messages: list[dict[str, Any]] | None) -> int:
    return sum(approx_tokens(str(m.get("content") or "")) + approx_tokens(json.dumps(m.get("tool_calls") or ""))
               for m in messages or [])


def tip(kind: str, severity: str, message: str, **detail: Any) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "message": message, "detail": detail}


def turn_tips(turn: dict[str, Any], calls: list[dict[str, Any]],
              price: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Heuristics over one recorded turn, most severe first (`price` looks a model's price up)."""
    tips: list[dict[str, Any]] = []
    attempts = answered(turn)
    last_ok = next((a for a in reversed(attempts) if a.get("ok")), {})
    window = context_window(turn["model"])
    used = last_ok.get("input_tokens") or context_tokens(turn.get("context"))
    if used >= NEAR_LIMIT * window:
        tips.append(tip("context_near_limit", "warning", f"the context used {used} of {window} tokens "
                        f"({used / window:.0%}); trim history or switch to a larger-context model",
                        tokens=used, window=window))
    errors = Counter(c["tool"] for c in calls if c["is_error"])
    for tool, count in errors.items():
        if count >= 2:
            tips.append(tip("repeated_tool_errors", "warning", f"{tool} failed {count} times in this turn; "
                            "check its arguments in the agent's prompt or the tool's setup", tool=tool, errors=count))
    slow = [a for a in attempts if a.get("ok") and float(a.get("ms") or 0) > SLOW_MS]
    for attempt in slow:
        tips.append(tip("slow_provider", "warning", f"{attempt['model']} took {attempt['ms'] / 1000:.1f}s; "
                        "consider latency_optimized routing or a faster fallback", model=attempt["model"]))
    failed = [a for a in attempts if not a.get("ok")]
    if failed and turn["status"] == "completed":
        tips.append(tip("fallback_used", "info", f"{len(failed)} provider attempt(s) failed before "
                        f"{turn['model']} answered", failures=[a.get("error") for a in failed]))
    if turn["status"] != "completed":
        tips.append(tip("turn_failed", "critical", f"the turn failed: {turn.get('error')}"))
    if len(calls) >= MANY_TOOL_CALLS:
        tips.append(tip("many_tool_calls", "info", f"{len(calls)} tool calls in one turn; a plan_and_execute "
                        "pattern or a more specific prompt may need fewer", count=len(calls)))
    if turn["cost_usd"] >= EXPENSIVE_USD:
        tips.append(tip("expensive_turn", "info", f"this turn cost ${turn['cost_usd']:.4f}; "
                        "cost_optimized routing or the response cache could lower it", cost_usd=turn["cost_usd"]))
    unpriced = sorted({a["model"] for a in attempts if a.get("ok") and a.get("input_tokens") and price is not None
                       and price(a["model"]) is None})
    if unpriced:
        tips.append(tip("unpriced_model", "info", f"no price is known for {', '.join(unpriced)}, so this turn's "
                        "cost counts it as free; add it to the `prices` setting", models=unpriced))
    if any(a.get("cache") == "hit" for a in attempts):
        tips.append(tip("cache_hit", "info", "answered from the response cache"))
    order = {"critical": 0, "warning": 1, "info": 2}
    return sorted(tips, key=lambda t: order[t["severity"]])


class Observatory:
    """`/api/turns/{id}/...` and `/api/sessions/{id}/turns|insights|analyze`."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.turns = core.stats.turns
        self._price = getattr(core.loop.router, "price", None)

    async def _turn(self, turn_id: str) -> dict[str, Any]:
        turn = await self.turns.turn(turn_id)
        if turn is None:
            raise NotFound(f"turn {turn_id!r} not found", code="TURN_NOT_FOUND")
        return turn

    async def _session_turns(self, session_id: str) -> list[dict[str, Any]]:
        if not await self.turns.session_exists(session_id):
            raise SessionNotFound(f"session {session_id!r} not found")
        return await self.turns.session_turns(session_id)

    @staticmethod
    def summary(turn: dict[str, Any], tool_calls: int, grade: int | None = None) -> dict[str, Any]:
        return {"id": turn["id"], "session_id": turn["session_id"], "agent": turn["agent"], "model": turn["model"],
                "provider": turn["provider"], "status": turn["status"], "error": turn["error"],
                "input_tokens": turn["input_tokens"], "output_tokens": turn["output_tokens"],
                "cost_usd": turn["cost_usd"], "total_ms": turn["total_ms"], "model_ms": turn["model_ms"],
                "tool_ms": turn["tool_ms"], "tool_calls": tool_calls, "trace_id": turn["trace_id"],
                "created_at": turn["created_at"], "grade": grade}

    async def session_turns(self, session_id: str) -> dict[str, Any]:
        turns = await self._session_turns(session_id)
        calls = Counter(c["turn_id"] for c in await self.turns.tool_calls([t["id"] for t in turns]))
        grades = {f["turn_id"]: f["grade"] for f in await self.core.feedback.store.for_session(session_id)}
        items = [self.summary(t, calls[t["id"]], grades.get(t["id"])) for t in turns]
        return {"session_id": session_id, "turns": items, "count": len(items)}

    async def turn(self, turn_id: str) -> dict[str, Any]:
        turn = await self._turn(turn_id)
        calls = await self.turns.tool_calls([turn_id])
        feedback = await self.core.feedback.store.get(turn_id)
        return {**self.summary(turn, len(calls), feedback["grade"] if feedback else None),
                "attempts": turn["attempts"] or [], "context_messages": len(turn["context"] or [])}

    async def context(self, turn_id: str) -> dict[str, Any]:
        turn = await self._turn(turn_id)
        messages = turn["context"] or []
        last = next((a for a in reversed(answered(turn)) if a.get("ok") and a.get("cache") != "hit"), {})
        # The provider's own count when it reported one; else about four characters a token.
        tokens, window = last.get("input_tokens") or context_tokens(messages), context_window(turn["model"])
        return {"turn_id": turn_id, "model": turn["model"], "messages": messages, "message_count": len(messages),
                "tokens": tokens, "approx_tokens": context_tokens(messages), "context_window": window,
                "utilization": round(tokens / window, 4)}

    async def tools(self, turn_id: str) -> dict[str, Any]:
        await self._turn(turn_id)
        calls = await self.turns.tool_calls([turn_id])
        items = [{"id": c["id"], "call_id": c["call_id"], "tool": c["tool"], "input": c["input"],
                  "output": c["output"], "is_error": bool(c["is_error"]), "duration_ms": c["duration_ms"]}
                 for c in calls]
        return {"turn_id": turn_id, "tool_calls": items, "count": len(items)}

    async def tips(self, turn_id: str) -> dict[str, Any]:
        turn = await self._turn(turn_id)
        tips = turn_tips(turn, await self.turns.tool_calls([turn_id]), self._price)
        return {"turn_id": turn_id, "tips": tips, "count": len(tips)}

    async def model_selection(self, turn_id: str) -> dict[str, Any]:
        turn = await self._turn(turn_id)
        spec = self.core.agents.find(turn["agent"])
        config = (spec.model if spec else None) or self.core.loop.default_model
        attempts = turn["attempts"] or []
        return {"turn_id": turn_id, "agent": turn["agent"], "selected": turn["model"],
                "strategy": next((a["strategy"] for a in attempts if "strategy" in a), config.routing),
                "candidates": [r.label for r in config.candidates], "attempts": attempts}

    async def insights(self, session_id: str) -> dict[str, Any]:
        turns = await self._session_turns(session_id)
        calls = await self.turns.tool_calls([t["id"] for t in turns])
        feedback = await self.core.feedback.store.for_session(session_id)
        by_turn: dict[str, list[dict[str, Any]]] = {}
        for call in calls:
            by_turn.setdefault(call["turn_id"], []).append(call)
        tips = Counter(t["kind"] for turn in turns for t in turn_tips(turn, by_turn.get(turn["id"], []), self._price))
        latencies = [t["total_ms"] for t in turns]
        return {
            "session_id": session_id, "turns": len(turns),
            "failed_turns": sum(t["status"] != "completed" for t in turns),
            "input_tokens": sum(t["input_tokens"] for t in turns), "output_tokens": sum(t["output_tokens"] for t in turns),
            "cost_usd": round(sum(t["cost_usd"] for t in turns), 8),
            "avg_latency_ms": round(statistics.fmean(latencies), 2) if latencies else None,
            "models": dict(Counter(t["model"] for t in turns if t["model"])),
            "agents": dict(Counter(t["agent"] for t in turns)),
            "tools": dict(Counter(c["tool"] for c in calls)), "tool_errors": sum(bool(c["is_error"]) for c in calls),
            "average_grade": round(statistics.fmean([f["grade"] for f in feedback]), 2) if feedback else None,
            "tips": dict(tips),
        }

    async def analyze_turn(self, turn_id: str) -> dict[str, Any]:
        turn = await self._turn(turn_id)
        calls = await self.turns.tool_calls([turn_id])
        material = {"turn": self.summary(turn, len(calls)), "context": turn["context"],
                    "tool_calls": [{k: c[k] for k in ("tool", "input", "output", "is_error")} for c in calls],
                    "tips": turn_tips(turn, calls, self._price)}
        return {"turn_id": turn_id, **await self._analyze(turn["agent"], material)}

    async def analyze_session(self, session_id: str) -> dict[str, Any]:
        turns = await self._session_turns(session_id)
        material = {"insights": await self.insights(session_id),
                    "turns": [{"agent": t["agent"], "status": t["status"], "model": t["model"],
                               "exchange": (t["context"] or [])[-2:]} for t in turns[-20:]]}
        agent = turns[-1]["agent"] if turns else self.core.settings.default_agent
        return {"session_id": session_id, **await self._analyze(agent, material)}

    async def _analyze(self, agent: str, material: dict[str, Any]) -> dict[str, Any]:
        """Ask a model (the analysis model, else the agent's) through the provider pool."""
        messages = [{"role": "system", "content": ANALYST},
                    {"role": "user", "content": json.dumps(material, default=str)[:60_000]}]
        with self.core.tracing.tracer.start_as_current_span("llm.analyze", attributes={"agent": agent}):
            result = await self._complete(self._analysis_models(agent), messages)
        self.core.tracing.submit()
        return result

    def _analysis_models(self, agent: str) -> list[ModelRef]:
        if self.core.settings.analysis_model:
            return ModelConfig.model_validate(self.core.settings.analysis_model).candidates
        spec = self.core.agents.find(agent)
        return ((spec.model if spec else None) or self.core.loop.default_model).candidates

    async def _complete(self, refs: list[ModelRef], messages: list[dict[str, Any]]) -> dict[str, Any]:
        failures = []
        for ref in refs:
            usage, text = Usage(), []
            try:
                async for event in self.core.providers.get(ref).stream(ModelRequest(messages=messages)):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                    elif isinstance(event, Usage):
                        usage.add(event)
            except ProviderError as exc:
                failures.append(f"{ref.label}: {exc}")
                continue
            return {"model": ref.label, "analysis": "".join(text),
                    "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}
        raise ProvidersUnavailable("no model could run the analysis", hint="; ".join(failures))

"""Which model candidates a call tries, in what order, and how each is called.

Strategies (an agent's `model.routing`):
  priority           primary, then the fallbacks, as written
  cost_optimized     cheapest first by the price table (settings `prices` override built-ins)
  latency_optimized  lowest moving average of observed latency first (unmeasured ones first,
                     so every candidate gets measured)
  round_robin        the list rotated by one on every call of the same agent model config
  capability_match   priority order, skipping candidates that cannot call tools when the call
                     offers tools
Whatever the strategy, candidates whose circuit breaker is open are skipped. Every plan says
why each candidate sits where it does; the loop records that with the turn's attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from podium.errors import ProviderError
from podium.runtime.agent import ModelConfig, ModelRef
from podium.runtime.breaker import BreakerBoard, CircuitOpen
from podium.runtime.retry import RetryPolicy, is_transient
from podium.settings import ModelPrice, Settings

T = TypeVar("T")

# List prices in USD per million tokens (input, output); settings `prices` override them.
BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "openai/gpt-4o": (2.50, 10.00), "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4.1": (2.00, 8.00), "openai/gpt-4.1-mini": (0.40, 1.60), "openai/gpt-4.1-nano": (0.10, 0.40),
    "openai/o3-mini": (1.10, 4.40),
    "anthropic/claude-3-5-haiku-latest": (0.80, 4.00), "anthropic/claude-3-5-sonnet-latest": (3.00, 15.00),
    "anthropic/claude-sonnet-4-0": (3.00, 15.00), "anthropic/claude-opus-4-0": (15.00, 75.00),
    # In-process and self-hosted models cost nothing per token.
    "local/*": (0.0, 0.0), "scripted/*": (0.0, 0.0), "ollama/*": (0.0, 0.0), "vllm/*": (0.0, 0.0),
}


@dataclass
class RoutePlan:
    """The candidates to try in order, each with the reason for its place, and those skipped."""

    strategy: str
    ranked: list[tuple[ModelRef, str]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


class ModelRouter:
    """Orders candidates by strategy and calls one with retries behind its circuit breaker."""

    def __init__(self, prices: dict[str, ModelPrice] | None = None, *, latency_window: int = 10,
                 breakers: BreakerBoard | None = None, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.prices = {**{k: ModelPrice(input_per_mtok=i, output_per_mtok=o)
                          for k, (i, o) in BUILTIN_PRICES.items()}, **(prices or {})}
        self.breakers = breakers or BreakerBoard(threshold=5, cooldown=30.0)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        # Keyed by model and endpoint: one model name may be served by several endpoints.
        self._latency: dict[tuple[str, str | None], deque[float]] = defaultdict(
            lambda: deque(maxlen=latency_window))
        self._turn: dict[tuple[str, ...], int] = defaultdict(int)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelRouter":
        r = settings.resilience
        return cls(settings.prices, latency_window=r.latency_window,
                   breakers=BreakerBoard(r.breaker_threshold, r.breaker_cooldown),
                   retry=RetryPolicy(r.retries, r.backoff_base, r.backoff_max))

    # -- figures ------------------------------------------------------------------------

    def price(self, label: str) -> ModelPrice | None:
        """The price of `provider/model`: exact entry, else the provider's `provider/*` entry."""
        return self.prices.get(label) or self.prices.get(f"{label.partition('/')[0]}/*")

    def cost(self, label: str | None, input_tokens: int, output_tokens: int) -> float:
        price = self.price(label) if label else None
        if price is None:
            return 0.0
        return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1_000_000

    def observe(self, ref: ModelRef, ms: float) -> None:
        self._latency[(ref.label, ref.base_url)].append(ms)

    def latency(self, ref: ModelRef) -> float | None:
        """The moving average of `ref`'s observed latency in ms, None before any call."""
        window = self._latency.get((ref.label, ref.base_url))
        return sum(window) / len(window) if window else None

    def retry_after(self, config: ModelConfig) -> float | None:
        """Seconds until an open breaker of `config`'s candidates allows a trial (for the
        503's Retry-After); None when no candidate's breaker is open."""
        waits = [b.status()["retry_in_seconds"] for ref in config.candidates
                 if (b := self.breakers.for_ref(ref)).state == "open"]
        return min(waits) if waits else None

    # -- ordering -----------------------------------------------------------------------

    def candidates(self, config: ModelConfig, *, needs_tools: bool = False) -> list[ModelRef]:
        return [ref for ref, _ in self.plan(config, needs_tools=needs_tools).ranked]

    def plan(self, config: ModelConfig, *, needs_tools: bool = False,
             capable: Callable[[ModelRef], bool] | None = None) -> RoutePlan:
        """Order `config`'s candidates by its strategy, skipping open breakers."""
        plan = RoutePlan(config.routing)
        for ref, reason in self._ordered(config, needs_tools, capable, plan):
            breaker = self.breakers.for_ref(ref)
            if breaker.available():
                plan.ranked.append((ref, reason))
            else:
                plan.skipped.append({"model": ref.label, "ok": False, "strategy": config.routing,
                                     "skipped": f"circuit open for {breaker.key}"})
        return plan

    def _ordered(self, config: ModelConfig, needs_tools: bool, capable: Callable[[ModelRef], bool] | None,
                 plan: RoutePlan) -> list[tuple[ModelRef, str]]:
        refs = config.candidates
        strategy = config.routing
        if strategy == "cost_optimized":
            return self._by_cost(refs)
        if strategy == "latency_optimized":
            return self._by_latency(refs)
        if strategy == "round_robin":
            key = tuple(r.label for r in refs)
            start = self._turn[key] % len(refs)
            self._turn[key] += 1
            rotated = refs[start:] + refs[:start]
            return [(r, f"round robin: turn {start + 1} of {len(refs)} starts here" if i == 0 else
                     "round robin: next in rotation") for i, r in enumerate(rotated)]
        if strategy == "capability_match" and needs_tools and capable is not None:
            kept = []
            for ref in refs:
                if capable(ref):
                    kept.append((ref, "supports tools"))
                else:
                    plan.skipped.append({"model": ref.label, "ok": False, "strategy": strategy,
                                         "skipped": "cannot call tools and the request offers tools"})
            return kept
        return [(r, "primary" if i == 0 else f"fallback {i}") for i, r in enumerate(refs)]

    def _by_cost(self, refs: list[ModelRef]) -> list[tuple[ModelRef, str]]:
        def blended(ref: ModelRef) -> float:
            price = self.price(ref.label)
            # Unknown prices sort last: a model we cannot price may be expensive.
            return float("inf") if price is None else price.input_per_mtok + price.output_per_mtok

        ranked = sorted(refs, key=blended)  # stable: equal prices keep the written order
        return [(r, f"price {blended(r):g} USD per million input+output tokens"
                 if blended(r) != float("inf") else "no known price") for r in ranked]

    def _by_latency(self, refs: list[ModelRef]) -> list[tuple[ModelRef, str]]:
        def average(ref: ModelRef) -> float:
            value = self.latency(ref)
            return -1.0 if value is None else value  # measure unmeasured candidates first

        ranked = sorted(refs, key=average)
        return [(r, "no latency observed yet" if average(r) < 0 else
                 f"average latency {average(r):.1f} ms") for r in ranked]

    # -- calling ------------------------------------------------------------------------

    async def call(self, ref: ModelRef, attempt: Callable[[], Awaitable[T]],
                   record: Callable[[dict[str, Any]], None]) -> T:
        """Call `attempt` behind `ref`'s breaker, retrying 429/5xx as the policy says."""
        breaker = self.breakers.for_ref(ref)
        tries = 0
        while True:
            if not breaker.acquire():
                raise CircuitOpen(f"circuit open for {breaker.key}")
            tries += 1
            started = time.perf_counter()
            try:
                result = await attempt()
            except ProviderError as exc:
                if is_transient(exc):
                    breaker.failure(str(exc))
                else:
                    breaker.release()
                delay = self.retry.delay(exc, tries)
                if delay is None or breaker.state == "open":
                    raise  # no retry is due, or this failure opened the breaker: move on now
                record({"model": ref.label, "retry_in": round(delay, 3), "retry_reason": (
                    "Retry-After" if exc.retry_after is not None else "backoff") + f" after {exc}"})
                await self.sleep(delay)
                continue
            except BaseException:
                breaker.release()
                raise
            breaker.success()
            self.observe(ref, (time.perf_counter() - started) * 1000)
            return result

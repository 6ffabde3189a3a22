"""Unit tests of the resilience building blocks: breaker states on an injected clock, the retry
policy's delays, the router's orderings."""

from __future__ import annotations

from podium.errors import ProviderError
from podium.runtime.agent import ModelConfig
from podium.runtime.breaker import Breaker, BreakerBoard, endpoint_key
from podium.runtime.retry import RetryPolicy
from podium.runtime.routing import ModelRouter
from podium.settings import ModelPrice


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_closed_open_half_open_closed():
    clock = Clock()
    breaker = Breaker("e", threshold=2, cooldown=10, clock=clock)
    assert breaker.acquire()
    breaker.failure("boom")
    assert breaker.state == "closed" and breaker.acquire()
    breaker.failure("boom")
    assert breaker.state == "open" and not breaker.available() and not breaker.acquire()
    clock.now += 10
    assert breaker.available() and breaker.acquire()
    assert breaker.state == "half_open" and not breaker.acquire()  # one trial at a time
    breaker.failure("still down")
    assert breaker.state == "open" and breaker.status()["retry_in_seconds"] == 10
    clock.now += 10
    assert breaker.acquire()
    breaker.success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_board_reset_by_kind_or_key():
    board = BreakerBoard(1, 60)
    for key in ("openai@a:1", "openai/gpt-4o", "anthropic@b:2"):
        board.get(key).failure("x")
    assert board.reset("openai") == ["openai@a:1", "openai/gpt-4o"]
    assert board.reset("anthropic@b:2") == ["anthropic@b:2"]
    assert all(b["state"] == "closed" for b in board.status())


def test_endpoint_key():
    config = ModelConfig.model_validate({"primary": {"provider": "openai", "model": "m",
                                                     "base_url": "http://127.0.0.1:9/v1"},
                                         "fallback": ["scripted/echo"]})
    assert [endpoint_key(r) for r in config.candidates] == ["openai@127.0.0.1:9", "scripted/echo"]


def test_retry_policy():
    policy = RetryPolicy(retries=2, base=0.5, maximum=3)
    assert policy.delay(ProviderError("x", status=500), 1) == 0.5
    assert policy.delay(ProviderError("x", status=502), 2) == 1.0
    assert policy.delay(ProviderError("x", status=502), 3) is None  # retries spent
    assert policy.delay(ProviderError("x", status=429, retry_after=2), 1) == 2
    assert policy.delay(ProviderError("x", status=429, retry_after=30), 1) is None  # too long: move on
    assert policy.delay(ProviderError("x", status=400), 1) is None
    assert policy.delay(ProviderError("unreachable"), 1) is None


def test_retry_after_header_forms():
    import email.utils
    import time

    import httpx

    from podium.runtime.providers.openai import retry_after

    assert retry_after(httpx.Headers({"retry-after": "7"})) == 7
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < retry_after(httpx.Headers({"retry-after": in_a_minute})) <= 60
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx.Headers({})) is None


def test_router_orders():
    config = {"primary": "openai/gpt-4o", "fallback": ["openai/gpt-4o-mini", "scripted/x", "acme/unknown"]}
    router = ModelRouter()
    cheap = router.candidates(ModelConfig.model_validate({**config, "routing": "cost_optimized"}))
    assert [r.label for r in cheap] == ["scripted/x", "openai/gpt-4o-mini", "openai/gpt-4o", "acme/unknown"]
    custom = ModelRouter({"acme/*": ModelPrice(input_per_mtok=0, output_per_mtok=0)})
    priced = custom.candidates(ModelConfig.model_validate({**config, "routing": "cost_optimized"}))
    assert [r.label for r in priced] == ["scripted/x", "acme/unknown", "openai/gpt-4o-mini", "openai/gpt-4o"]
    assert round(router.cost("openai/gpt-4o", 1_000_000, 1_000_000), 2) == 12.5
    rr = ModelConfig.model_validate({**config, "routing": "round_robin"})
    firsts = [router.candidates(rr)[0].label for _ in range(5)]
    assert firsts == ["openai/gpt-4o", "openai/gpt-4o-mini", "scripted/x", "acme/unknown", "openai/gpt-4o"]
    fast = ModelConfig.model_validate({**config, "routing": "latency_optimized"})
    for ref, ms in zip(fast.candidates, (300, 20, 50, 10), strict=True):
        router.observe(ref, ms)
    assert [r.label for r in router.candidates(fast)] == ["acme/unknown", "openai/gpt-4o-mini", "scripted/x",
                                                          "openai/gpt-4o"]


def test_plan_skips_open_breakers_and_incapable_candidates():
    router = ModelRouter(breakers=BreakerBoard(1, 60))
    config = ModelConfig.model_validate({"primary": "local/small", "fallback": ["scripted/a", "scripted/b"],
                                         "routing": "capability_match"})
    router.breakers.get("scripted/a").failure("down")
    plan = router.plan(config, needs_tools=True, capable=lambda ref: ref.provider != "local")
    assert [r.label for r, _ in plan.ranked] == ["scripted/b"]
    assert [s["skipped"] for s in plan.skipped] == ["cannot call tools and the request offers tools",
                                                    "circuit open for scripted/a"]
    # Without tools in the request every candidate is capable enough.
    assert [r.label for r, _ in router.plan(config, capable=lambda ref: False).ranked] == ["local/small", "scripted/b"]

"""Builds providers from model references and keeps them for reuse.

Each provider kind registers a factory here, the built-ins the same way a plugin would.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import orjson

from podium.errors import BadRequest
from podium.runtime.agent import ModelRef
from podium.runtime.providers.anthropic import AnthropicProvider
from podium.runtime.providers.base import Provider
from podium.runtime.providers.local import LocalModel, LocalProvider
from podium.runtime.providers.openai import OpenAIProvider
from podium.runtime.providers.scripted import ScriptedProvider
from podium.settings import Settings, secret_from_env

Factory = Callable[["ProviderPool", ModelRef], Provider]


def _api_key(ref: ModelRef) -> str | None:
    if ref.api_key is not None:
        return ref.api_key.get_secret_value()
    return secret_from_env(ref.api_key_env) if ref.api_key_env else None


def _openai(pool: "ProviderPool", ref: ModelRef) -> Provider:
    return OpenAIProvider(ref.model, base_url=ref.base_url, api_key=_api_key(ref) or pool.stored_key("openai"),
                          session=pool.session)


def _anthropic(pool: "ProviderPool", ref: ModelRef) -> Provider:
    return AnthropicProvider(ref.model, base_url=ref.base_url,
                             api_key=_api_key(ref) or pool.stored_key("anthropic"))


def _ollama(pool: "ProviderPool", ref: ModelRef) -> Provider:
    # Ollama and vLLM speak the OpenAI protocol; these kinds only supply the usual base URL.
    return OpenAIProvider(ref.model, base_url=ref.base_url or "http://127.0.0.1:11434/v1",
                          api_key=_api_key(ref), session=pool.session)


def _vllm(pool: "ProviderPool", ref: ModelRef) -> Provider:
    return OpenAIProvider(ref.model, base_url=ref.base_url or "http://127.0.0.1:8001/v1",
                          api_key=_api_key(ref), session=pool.session)


def _local(pool: "ProviderPool", ref: ModelRef) -> Provider:
    return LocalProvider(ref.model, pool.local)


def _scripted(pool: "ProviderPool", ref: ModelRef) -> Provider:
    return ScriptedProvider(ref.model, ref.script)


BUILTIN_FACTORIES: dict[str, Factory] = {
    "openai": _openai, "anthropic": _anthropic, "ollama": _ollama, "vllm": _vllm,
    "local": _local, "scripted": _scripted,
}


class ProviderPool:
    """Owns the shared HTTP session and the local model; hands out one provider per model ref."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.local = LocalModel(settings.local_max_new_tokens, settings.local_threads)
        self.factories: dict[str, Factory] = dict(BUILTIN_FACTORIES)
        self._cache: dict[str, Provider] = {}
        # Keys set through the console API (PUT /api/providers/{name}/key) land here.
        self.keys: dict[str, str] = {}

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session every OpenAI-compatible provider shares (connection pool included);
        made on first use, since aiohttp wants a running event loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, limit_per_host=0),
                                                  json_serialize_bytes=orjson.dumps,
                                                  trust_env=False)  # proxies: see OpenAIProvider
        return self._session

    def register(self, kind: str, factory: Factory) -> None:
        self.factories[kind] = factory

    def stored_key(self, kind: str) -> str | None:
        return self.keys.get(kind)

    def get(self, ref: ModelRef) -> Provider:
        key = json.dumps([ref.provider, ref.model, ref.base_url, _api_key(ref), ref.script], default=str)
        provider = self._cache.get(key)
        if provider is None:
            factory = self.factories.get(ref.provider)
            if factory is None:
                raise BadRequest(f"unknown provider {ref.provider!r}; known: {', '.join(sorted(self.factories))}")
            provider = self._cache[key] = factory(self, ref)
        return provider

    def forget(self) -> None:
        """Drop built providers (after a key change) so the next call builds them afresh."""
        self._cache.clear()

    async def close(self) -> None:
        for provider in self._cache.values():
            aclose = getattr(provider, "aclose", None)  # providers owning a connection pool
            if aclose is not None:
                await aclose()
        if self._session is not None:
            await self._session.close()

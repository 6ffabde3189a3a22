"""The `openai` embedder: any OpenAI-compatible `/v1/embeddings` (OpenAI, Ollama, vLLM, TEI)."""

from __future__ import annotations

import numpy as np
import openai

from podium.runtime.embeddings.base import EmbedderUnavailable, normalise


class OpenAIEmbedder:
    """Calls `embeddings.create` through the openai SDK, `batch_size` texts per request."""

    def __init__(self, base_url: str, model: str, api_key: str | None, *, batch_size: int = 64) -> None:
        self.name = f"openai/{model}"
        self.model = model
        self.batch_size = batch_size
        # Local servers (Ollama, TEI) take no key, but the SDK insists on one.
        self._client = openai.AsyncOpenAI(base_url=base_url or None, api_key=api_key or "unused",
                                          max_retries=2, timeout=60)

    @property
    def available(self) -> bool:
        return True

    @property
    def ready(self) -> bool:
        return True

    async def warm(self) -> None:
        return None  # nothing to load; a request at start-up would only spend the user's quota

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            try:
                answer = await self._client.embeddings.create(model=self.model,
                                                              input=texts[start:start + self.batch_size])
            except openai.OpenAIError as exc:
                raise EmbedderUnavailable(f"embedding request to {self.name} failed: {exc}") from exc
            rows += [d.embedding for d in sorted(answer.data, key=lambda d: d.index)]
        return normalise(np.array(rows, dtype=np.float32).reshape(len(rows), -1))

    async def close(self) -> None:
        await self._client.close()

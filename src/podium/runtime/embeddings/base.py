"""The embedder seam: texts in, L2-normalised float32 vectors out.

Two implementations sit beside this file (`local`, `openai`); `build_embedder` picks one from
the settings. Vectors are normalised so that a dot product is the cosine similarity.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from podium.errors import PodiumError


class EmbedderUnavailable(PodiumError):
    """No embedder is configured, or the configured one cannot run."""

    status = 503
    code = "EMBEDDER_UNAVAILABLE"


class Embedder(Protocol):
    """Turns texts into unit vectors; `name` identifies the model (stored with collections)."""

    name: str

    @property
    def available(self) -> bool:
        """Whether embedding can be attempted at all (model installed, endpoint configured)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether an embedding can start now, with nothing left to load first."""
        ...

    async def warm(self) -> None:
        """Load now what the first embedding would otherwise load (a no-op where nothing loads)."""
        ...

    async def embed(self, texts: list[str]) -> np.ndarray:
        """A (len(texts), dimension) float32 matrix of unit rows."""
        ...

    async def close(self) -> None: ...


class NoEmbedder:
    """The `none` setting: every use fails clearly; semantic memory turns itself off."""

    name = "none"
    available = False
    ready = False

    async def warm(self) -> None:
        return None

    async def embed(self, texts: list[str]) -> np.ndarray:
        raise EmbedderUnavailable("no embedder is configured (setting `embedder` is `none`)")

    async def close(self) -> None:
        return None


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero) as contiguous float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


def build_embedder(settings) -> Embedder:  # noqa: ANN001 - Settings, imported lazily by callers
    """The embedder the settings name (`local`, `openai` or `none`)."""
    if settings.embedder == "local":
        from podium.runtime.embeddings.local import LocalEmbedder

        return LocalEmbedder(batch_size=settings.embedder_batch_size)
    if settings.embedder == "openai":
        from podium.runtime.embeddings.openai import OpenAIEmbedder

        key = settings.embedder_api_key.get_secret_value() if settings.embedder_api_key else None
        return OpenAIEmbedder(settings.embedder_base_url, settings.embedder_model, key,
                              batch_size=settings.embedder_batch_size)
    return NoEmbedder()

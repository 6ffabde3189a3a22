"""The lock under which Hugging Face libraries are first imported, by the local model and the
local embedder alike: both load in worker threads, and the first request of a new server, which
loads both at once, failed in one of them with an ImportError (transformers' lazy module is not
safe to import from two threads at once)."""

from __future__ import annotations

import threading

LOADING = threading.Lock()

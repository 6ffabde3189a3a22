"""The collector leaves what lasts out of its full collections: the objects a started server
holds, and those a loaded model brings (walking them all paused runs for 80-215 ms)."""

from __future__ import annotations

import gc

import httpx
import pytest

from tests.loopback import podium_process

ECHO = {"name": "echo", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
SMALL = {"name": "small", "model": "local/smollm2-135m", "orchestration": {"pattern": "single"},
         "memory": {"semantic": False}}


def test_a_running_server_keeps_its_start_up_objects_out_of_collections(podium):
    server = podium([ECHO])
    server.http.post("/v1/agents/echo/run", json={"query": "x"})
    heap = server.http.get("/api/stats/capacity").json()["heap"]
    assert heap["frozen_objects"] >= 50_000
    assert len(heap["collections"]) == 3 and heap["collections"][0] > 0
    assert heap["thresholds"][0] == 10_000  # young objects: most of a run's are gone by then
    server.stop()
    assert gc.get_freeze_count() == 0  # a stopped app hands them back, so it can be freed


@pytest.mark.slow
def test_loaded_models_are_left_out_of_collections(tmp_path):
    # A process of its own: in this one, earlier tests may have loaded both models already. No
    # agent uses semantic memory, so the embedder waits for its first use instead of loading at
    # start-up, and each model's load can be counted on its own.
    quiet = {**ECHO, "memory": {"semantic": False}}
    with podium_process(tmp_path, [quiet, SMALL], {"default_agent": "echo", "local_max_new_tokens": 4}) as served, \
            httpx.Client(base_url=served.url, timeout=300) as http:
        def capacity() -> dict:
            return http.get("/api/stats/capacity").json()

        started = capacity()["heap"]["frozen_objects"]
        assert started >= 50_000  # what start-up left
        answer = http.post("/v1/agents/small/run", json={"query": "Say hi", "session_id": "t"})
        assert answer.status_code == 200 and answer.json()["provider"] == "local"
        after_model = capacity()
        assert after_model["heap"]["frozen_objects"] - started >= 200_000  # torch and transformers: ~370,000
        assert after_model["embedder"]["ready"] is False  # nothing asked for it
        assert http.get("/v1/memory/echo/semantic", params={"query": "bees"}).status_code == 200  # loads it
        after_embedder = capacity()
        assert after_embedder["embedder"]["ready"] is True
        assert after_embedder["heap"]["frozen_objects"] - after_model["heap"]["frozen_objects"] >= 20_000  # ~54,000

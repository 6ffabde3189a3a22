"""Provider keys set through the console: used by providers, encrypted at rest, never returned,
and still there after a restart."""

from __future__ import annotations

import stat


def test_stored_key_is_used_encrypted_and_survives_restart(podium, fake_upstream):
    spec = {"name": "keyed", "orchestration": {"pattern": "single"},
            "model": {"provider": "openai", "model": "m", "base_url": fake_upstream.base_url}}
    server = podium([spec])
    stored = server.http.put("/api/providers/openai/key", json={"key": "sk-live-123"})
    assert stored.status_code == 200 and "sk-live-123" not in stored.text
    assert server.http.post("/v1/query", json={"prompt": "hi"}).status_code == 200
    assert fake_upstream.authorizations[-1] == "Bearer sk-live-123"
    data = server.root / "data"
    [(ciphertext,)] = server.query("select ciphertext from provider_keys where provider = 'openai'")
    assert "sk-live-123" not in ciphertext
    assert stat.S_IMODE((data / "provider_keys.secret").stat().st_mode) == 0o600
    server.restart()
    assert server.http.post("/v1/query", json={"prompt": "hi"}).status_code == 200
    assert fake_upstream.authorizations[-1] == "Bearer sk-live-123"
    assert server.http.delete("/api/providers/openai/key").json() == {"provider": "openai", "status": "removed"}
    server.http.post("/v1/query", json={"prompt": "hi"})
    assert fake_upstream.authorizations[-1] != "Bearer sk-live-123"


def test_key_errors_in_console_shape(podium):
    http = podium().http
    assert http.put("/api/providers/nosuch/key", json={"key": "x"}).status_code == 404
    assert http.delete("/api/providers/openai/key").status_code == 404
    bad = http.put("/api/providers/openai/key", json={"key": 5})
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    assert http.put("/api/providers/openai/key", json={"key": "   "}).status_code == 400

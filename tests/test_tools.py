"""Builtin tools through the real server: /v1/tools, /v1/tools/builtin, /v1/tools/execute, and a react run."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

FILER = {"name": "filer", "description": "Writes then reads a note", "tools": ["write_file", "read_file"],
         "orchestration": {"pattern": "react", "max_iterations": 5},
         "model": {"provider": "scripted", "model": "filer", "script": [
             {"tool_call": {"name": "write_file", "arguments": {"path": "notes/n1.txt", "content": "alpha beta"}}},
             {"tool_call": {"name": "read_file", "arguments": {"path": "notes/n1.txt"}}},
             {"reply": "The note says: {tool_result}"}]}}
CLUMSY = {"name": "clumsy", "description": "Reads a missing file", "tools": ["read_file"],
          "model": {"provider": "scripted", "model": "clumsy", "script": [
              {"tool_call": {"name": "read_file", "arguments": {"path": "../../etc/passwd"}}},
              {"reply": "Tool said: {tool_result}"}]}}
FETCHER = {"name": "fetcher", "description": "Uses the web", "model": "scripted/f",
           "tools": ["http_request", "json_query", "text_stats"]}


def run_tool(http: httpx.Client, tool: str, **args: Any) -> dict[str, Any]:
    response = http.post("/v1/tools/execute", json={"tool": tool, "input": args})
    assert response.status_code == 200, response.text
    return response.json()


def ok(http: httpx.Client, tool: str, **args: Any) -> Any:
    body = run_tool(http, tool, **args)
    assert body["error"] is False, body
    return body["output"]


def fails(http: httpx.Client, tool: str, **args: Any) -> str:
    body = run_tool(http, tool, **args)
    assert body["error"] is True, body
    assert isinstance(body["output"], str)
    return body["output"]


@pytest.fixture
def server(podium):
    return podium()


# ---- catalog ---------------------------------------------------------------------------------

def test_builtin_catalog_has_schemas(server):
    body = server.http.get("/v1/tools/builtin").json()
    assert body["count"] == len(body["tools"]) >= 12
    names = {t["name"] for t in body["tools"]}
    assert {"datetime_now", "calculator", "http_request", "json_query", "read_file", "write_file",
            "list_files", "text_stats", "regex_extract", "hash_text", "base64", "url_parse",
            "uuid_generate", "random_number", "unit_convert"} <= names
    for tool in body["tools"]:
        schema = tool["parameters"]
        assert tool["description"] and schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema.get("required", [])) <= set(schema["properties"])


def test_tools_list_agents_per_tool(podium):
    http = podium([FILER, FETCHER]).http
    listed = {t["name"]: t for t in http.get("/v1/tools").json()["tools"]}
    assert listed["write_file"]["agents"] == ["filer"] and listed["http_request"]["agents"] == ["fetcher"]
    assert listed["unit_convert"]["agents"] == [] and listed["json_query"]["type"] == "internal"


def test_execute_unknown_tool_and_bad_input(server):
    http = server.http
    assert http.post("/v1/tools/execute", json={"tool": "teleport", "input": {}}).status_code == 404
    for tool, args in [("json_query", {"data": {}}), ("write_file", {"path": "a", "content": "b", "x": 1}),
                       ("http_request", {"url": "http://example.com", "method": "BREW"}),
                       ("random_number", {"count": 10_000}), ("base64", {"action": "rot13", "text": "x"})]:
        response = http.post("/v1/tools/execute", json={"tool": tool, "input": args})
        assert response.status_code == 422, (tool, response.text)
        assert tool in response.json()["detail"]


# ---- calculator and clock --------------------------------------------------------------------

def test_calculator_safe(server):
    http = server.http
    assert ok(http, "calculator", expression="2 * (3 + 4) ** 2")["result"] == 98
    assert "unsupported" in fails(http, "calculator", expression="__import__('os').system('id')")
    assert "exponent too large" in fails(http, "calculator", expression="10 ** 10 ** 10")
    assert "too large" in fails(http, "calculator", expression="(9 ** 999) ** 999")
    assert "division by zero" in fails(http, "calculator", expression="1 / 0")
    assert "complex" in fails(http, "calculator", expression="(-8) ** 0.5")
    assert "unsupported" in fails(http, "calculator", expression="().__class__")
    assert "digits" in fails(http, "calculator", expression="round(5, -999999999)")
    assert ok(http, "calculator", expression="round(2.567, 2) + round(2.5)")["result"] == pytest.approx(4.57)


def test_datetime_now(server):
    out = ok(server.http, "datetime_now", timezone="Europe/Paris")
    assert out["timezone"] == "Europe/Paris" and out["datetime"][-6:] in ("+01:00", "+02:00")
    assert "unknown timezone" in fails(server.http, "datetime_now", timezone="Mars/Olympus")


# ---- http_request ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:1/", "http://localhost/", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/", "http://2130706433/", "http://100.64.0.1/"])
def test_http_request_refuses_private_addresses(server, url):
    assert "non-public address" in fails(server.http, "http_request", url=url)


def test_http_request_refuses_other_schemes_and_bad_urls(server):
    http = server.http
    for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://x", "/relative/path"]:
        assert "only http and https" in fails(http, "http_request", url=url)
    assert "credentials" in fails(http, "http_request", url="http://user:pw@example.com/")
    assert "not allowed" in fails(http, "http_request", url="http://example.com/", headers={"Host": "evil"})
    assert "cannot resolve" in fails(http, "http_request", url="http://no-such-host.invalid/")


def test_http_request_reaches_allowed_private_server(podium, fake_upstream):
    server = podium(config={"http_tool_allow_private": True})
    http = server.http
    # Podium itself redirects "/v1/health/" to "/v1/health" (307): the tool follows, checking each hop.
    hopped = ok(http, "http_request", url=f"{server.url}/v1/health/")
    assert hopped["status"] == 200 and hopped["redirects"] == [f"{server.url}/v1/health/"]
    assert hopped["url"] == f"{server.url}/v1/health" and json.loads(hopped["body"])["status"] == "healthy"
    got = ok(http, "http_request", url=f"{fake_upstream.base_url}/models")
    assert got["status"] == 200 and got["truncated"] is False and got["redirects"] == []
    assert json.loads(got["body"])["data"][0]["id"] == "fake-model"
    assert got["headers"]["content-type"] == "application/json"
    fake_upstream.script = [{"text": "posted fine"}]
    posted = ok(http, "http_request", url=f"{fake_upstream.base_url}/chat/completions", method="POST",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                headers={"X-Test": "1"})
    assert posted["status"] == 200 and json.loads(posted["body"])["choices"][0]["message"]["content"] == "posted fine"
    assert fake_upstream.requests[-1]["messages"][0]["content"] == "hi"
    head = ok(http, "http_request", url=f"{fake_upstream.base_url}/models", method="HEAD")
    assert head["body"] == "" and head["status"] in (200, 405)
    missing = ok(http, "http_request", url=f"{fake_upstream.base_url}/nope")
    assert missing["status"] == 404  # an HTTP error status is a result, not a tool failure
    # The answer chains into json_query the way a model would use them.
    ids = ok(http, "json_query", query="data[].id", data=got["body"])
    assert ids["result"] == ["fake-model"]


def test_http_request_size_cap_and_closed_port(podium, fake_upstream):
    http = podium(config={"http_tool_allow_private": True, "http_tool_max_bytes": 16}).http
    got = ok(http, "http_request", url=f"{fake_upstream.base_url}/models")
    assert got["truncated"] is True and got["bytes"] == 16 and len(got["body"]) == 16
    assert got["body"] == '{"object":"list","data":[{"id":"fake-model","object":"model"}]}'[:16]
    assert "request failed" in fails(http, "http_request", url="http://127.0.0.1:1/")
    fake_upstream.script = [{"stall": 2, "text": "late"}]
    assert "timed out" in fails(http, "http_request", url=f"{fake_upstream.base_url}/chat/completions",
                                method="POST", json={"model": "m", "messages": []}, timeout=0.2)


# ---- json_query ------------------------------------------------------------------------------

def test_json_query(server):
    http = server.http
    doc = {"items": [{"name": "a", "price": 5}, {"name": "b", "price": 15}, {"name": "c", "price": 25}]}
    assert ok(http, "json_query", query="items[?price > `10`].name", data=doc)["result"] == ["b", "c"]
    assert ok(http, "json_query", query="length(items)", data=json.dumps(doc))["result"] == 3
    assert ok(http, "json_query", query="missing.key", data=doc)["result"] is None
    assert "invalid JMESPath" in fails(http, "json_query", query="items[?", data=doc)
    assert "not valid JSON" in fails(http, "json_query", query="a", data="{not json")
    assert "query failed" in fails(http, "json_query", query="length(`1`)", data=doc)
    assert "not valid JSON" in fails(http, "json_query", query="x", data='{"x": NaN}')


# ---- files -----------------------------------------------------------------------------------

def test_files_write_read_list(server):
    http = server.http
    workspace = Path(server.config["data_dir"]) / "workspace"
    wrote = ok(http, "write_file", path="reports/2024/q1.md", content="# Q1\nfine")
    assert wrote == {"path": "reports/2024/q1.md", "bytes_written": 9, "size": 9}
    assert (workspace / "reports/2024/q1.md").read_text() == "# Q1\nfine"
    ok(http, "write_file", path="reports/2024/q1.md", content="\nmore", mode="append")
    ok(http, "write_file", path="reports/data.json", content="{}")
    ok(http, "write_file", path="todo.txt", content="é ünïcode")
    read = ok(http, "read_file", path="reports/2024/q1.md")
    assert read["content"] == "# Q1\nfine\nmore" and read["truncated"] is False
    assert ok(http, "read_file", path="todo.txt")["content"] == "é ünïcode"
    part = ok(http, "read_file", path="reports/2024/q1.md", max_bytes=4)
    assert part["content"] == "# Q1" and part["truncated"] is True and part["size"] == 14
    top = ok(http, "list_files")
    assert {(e["path"], e["type"]) for e in top["entries"]} == {("reports", "folder"), ("todo.txt", "file")}
    sub = ok(http, "list_files", path="reports", pattern="*.json")
    assert [e["path"] for e in sub["entries"]] == ["reports/data.json"] and sub["entries"][0]["size"] == 2
    deep = ok(http, "list_files", pattern="*.md", recursive=True)
    assert [e["path"] for e in deep["entries"]] == ["reports/2024/q1.md"]
    assert "no such file" in fails(http, "read_file", path="nothing.txt")
    assert "not a file" in fails(http, "read_file", path="reports")
    assert "is a folder" in fails(http, "write_file", path="reports", content="x")
    assert "not a folder" in fails(http, "list_files", path="todo.txt")


def test_files_refuse_escapes(server):
    http = server.http
    data_dir = Path(server.config["data_dir"])
    for path in ["../podium.db", "a/../../outside.txt", "../../../etc/passwd"]:
        assert "escapes the workspace" in fails(http, "read_file", path=path)
        assert "escapes the workspace" in fails(http, "write_file", path=path, content="pwned")
    for path in ["/etc/passwd", str(data_dir / "podium.db"), "C:\\Windows\\win.ini", "~/.ssh/id_rsa"]:
        assert "absolute" in fails(http, "read_file", path=path)
        assert "absolute" in fails(http, "write_file", path=path, content="pwned")
    assert "escapes the workspace" in fails(http, "list_files", path="..")
    assert "inside the folder" in fails(http, "list_files", pattern="../*")
    assert not (data_dir / "outside.txt").exists() and not (data_dir.parent / "outside.txt").exists()


def test_files_refuse_symlinks_out_and_oversize(server):
    http = server.http
    data_dir = Path(server.config["data_dir"])
    (data_dir / "secret.txt").write_text("top secret")
    workspace = data_dir / "workspace"
    os.symlink(data_dir / "secret.txt", workspace / "link.txt")
    os.symlink(data_dir, workspace / "up")
    assert "escapes the workspace" in fails(http, "read_file", path="link.txt")
    assert "escapes the workspace" in fails(http, "read_file", path="up/secret.txt")
    assert "escapes the workspace" in fails(http, "write_file", path="up/evil.txt", content="x")
    listed = ok(http, "list_files", recursive=True, pattern="*")
    assert listed["entries"] == []  # links pointing out are not shown
    assert "exceed" in fails(http, "write_file", path="big.txt", content="x" * 1_000_001)
    assert not (workspace / "big.txt").exists() and not (data_dir / "evil.txt").exists()


# ---- text, encoding, generators, units -------------------------------------------------------

def test_text_stats_and_regex(server):
    http = server.http
    stats = ok(http, "text_stats", text="Hello world. It's a test!\n\nSecond para here.", top_words=1)
    assert stats["words"] == 8 and stats["lines"] == 3 and stats["sentences"] == 3 and stats["paragraphs"] == 2
    assert stats["characters"] == 44 and stats["top_words"][0]["count"] == 1
    found = ok(http, "regex_extract", pattern=r"(?P<user>\w+)@(\w+)\.com", text="a@x.com, B@y.com", max_matches=5)
    assert [m["match"] for m in found["matches"]] == ["a@x.com", "B@y.com"]
    assert found["matches"][1]["named"] == {"user": "B"} and found["matches"][0]["groups"] == ["a", "x"]
    assert ok(http, "regex_extract", pattern="b", text="ABAB", flags=["ignorecase"])["count"] == 2
    capped = ok(http, "regex_extract", pattern=r"\d", text="12345", max_matches=2)
    assert capped["count"] == 2 and capped["truncated"] is True
    assert "invalid regular expression" in fails(http, "regex_extract", pattern="(unclosed", text="x")
    # Catastrophic backtracking is stopped by the timeout instead of pinning a worker.
    assert "took longer" in fails(http, "regex_extract", pattern=r"(a+)+$", text="a" * 5000 + "!")


def test_hash_base64_url(server):
    http = server.http
    assert ok(http, "hash_text", text="abc")["hex"] == hashlib.sha256(b"abc").hexdigest()
    assert ok(http, "hash_text", text="abc", algorithm="md5")["hex"] == hashlib.md5(b"abc").hexdigest()
    import hmac
    assert ok(http, "hash_text", text="abc", key="k")["hex"] == hmac.new(b"k", b"abc", "sha256").hexdigest()
    assert ok(http, "base64", action="encode", text="héllo")["result"] == base64.b64encode("héllo".encode()).decode()
    assert ok(http, "base64", action="decode", text="aGVsbG8")["result"] == "hello"  # padding restored
    assert ok(http, "base64", action="decode", text="__8", urlsafe=True) == {
        "action": "decode", "result": "ffff", "binary": True, "note": "decoded bytes are not UTF-8 text; shown as hex"}
    assert "not valid base64" in fails(http, "base64", action="decode", text="***")
    parsed = ok(http, "url_parse", url="https://u@example.com:8443/a/b?q=1&q=2&x=#frag")
    assert parsed == {"scheme": "https", "host": "example.com", "port": 8443, "username": "u", "path": "/a/b",
                      "query": "q=1&q=2&x=", "fragment": "frag", "query_params": {"q": ["1", "2"], "x": [""]}}
    assert "invalid URL" in fails(http, "url_parse", url="http://host:99999/")


def test_uuid_and_random(server):
    http = server.http
    uuids = ok(http, "uuid_generate", count=3)["uuids"]
    assert len(set(uuids)) == 3 and all(uuid.UUID(u).version == 4 for u in uuids)
    numbers = ok(http, "random_number", min=5, max=7, count=50)["numbers"]
    assert len(numbers) == 50 and set(numbers) <= {5, 6, 7} and all(isinstance(n, int) for n in numbers)
    floats = ok(http, "random_number", min=0, max=1, integer=False, count=5)["numbers"]
    assert all(0 <= f <= 1 for f in floats)
    assert "greater than max" in fails(http, "random_number", min=10, max=1)
    assert "whole numbers" in fails(http, "random_number", min=0.5, max=2)


def test_unit_convert(server):
    http = server.http
    assert ok(http, "unit_convert", value=5, **{"from": "mi", "to": "km"})["result"] == pytest.approx(8.04672)
    assert ok(http, "unit_convert", value=212, **{"from": "F", "to": "celsius"})["result"] == pytest.approx(100)
    assert ok(http, "unit_convert", value=1, **{"from": "GiB", "to": "MB"})["result"] == pytest.approx(1073.741824)
    assert ok(http, "unit_convert", value=2, **{"from": "pounds", "to": "kg"})["dimension"] == "mass"
    assert "different kinds" in fails(http, "unit_convert", value=1, **{"from": "kg", "to": "km"})
    assert "unknown unit 'parsec'" in fails(http, "unit_convert", value=1, **{"from": "parsec", "to": "km"})
    assert "absolute zero" in fails(http, "unit_convert", value=-500, **{"from": "C", "to": "K"})
    assert "too large" in fails(http, "unit_convert", value=1e308, **{"from": "TiB", "to": "B"})


# ---- tools inside a run ----------------------------------------------------------------------

def test_react_run_writes_then_reads_a_file(podium):
    server = podium([FILER])
    body = server.http.post("/v1/agents/filer/run", json={"query": "make a note", "session_id": "t1"}).json()
    calls = body["tool_calls"]
    assert [c["tool"] for c in calls] == ["write_file", "read_file"]
    assert calls[0]["input"] == {"path": "notes/n1.txt", "content": "alpha beta"}
    assert json.loads(calls[0]["output"])["bytes_written"] == 10
    assert json.loads(calls[1]["output"])["content"] == "alpha beta"
    # The read result went back to the model, which quoted it in its answer.
    assert body["response"].startswith("The note says: ") and '"content": "alpha beta"' in body["response"]
    assert (Path(server.config["data_dir"]) / "workspace/notes/n1.txt").read_text() == "alpha beta"


def test_tool_error_goes_back_to_the_model(podium):
    body = podium([CLUMSY]).http.post("/v1/agents/clumsy/run", json={"query": "read it"}).json()
    assert body["response"].startswith("Tool said: read_file failed: path escapes the workspace")
    assert body["tool_calls"][0]["tool"] == "read_file" and "escapes" in body["tool_calls"][0]["output"]

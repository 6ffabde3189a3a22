"""JSON text (`podium.jsontext`, and `JSONText`, the response every dialect answers with): orjson's
speed with the standard library's text, and no value lost where orjson refuses one."""

from __future__ import annotations

import json
import math

from starlette.responses import JSONResponse

from podium import jsontext
from podium.api._dialect import JSONText

VALUES = [
    {"response": "Paris, déjà vu ✓ 日本", "usage": {"input_tokens": 10, "output_tokens": 16}, "tool_calls": []},
    {"nested": [1, 2.5, -0.0, 1e-07, 123456789.125, True, None, {"k": ["v"]}], "empty": {}},
    {1: "integer key", "s": "quote \" and backslash \\ and newline \n"},
    [2**63 - 1, -(2**63)],
]


def test_dumps_writes_what_the_standard_library_writes():
    for value in VALUES:
        assert json.loads(jsontext.dumps(value)) == json.loads(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    assert jsontext.dumps(VALUES[0]) == json.dumps(VALUES[0], separators=(",", ":"), ensure_ascii=False)


def test_integers_past_64_bits_keep_every_digit():
    big = {"id": 2**80 + 1}
    assert jsontext.dumps(big) == '{"id":1208925819614629174706177}'
    assert json.loads(jsontext.dumps(big)) == big


def test_responses_carry_the_same_body_as_starlettes_and_null_for_nan():
    for value in VALUES:
        assert json.loads(JSONText(value).body) == json.loads(JSONResponse(value).body)
    assert JSONText(VALUES[0]).body == JSONResponse(VALUES[0]).body
    assert JSONText({"x": math.nan}).body == b'{"x":null}'  # Starlette's JSONResponse raises here
    assert JSONText({}).headers["content-type"] == "application/json"

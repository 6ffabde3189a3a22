"""Encoding tools: hashes, base64 and URL parsing."""

from __future__ import annotations

import base64 as b64
import binascii
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

from podium.runtime.tools.base import Tool, ToolContext, ToolError

ALGORITHMS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b", "blake2s"]
MAX_INPUT_CHARS = 1_000_000


def _limit(text: str) -> None:
    if len(text) > MAX_INPUT_CHARS:
        raise ToolError(f"input too long ({MAX_INPUT_CHARS} characters at most)")


async def hash_text(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    text, algorithm = args["text"], args.get("algorithm", "sha256")
    _limit(text)
    data = text.encode("utf-8")
    if "key" in args:  # an HMAC, e.g. to check a webhook signature
        digest = hmac.new(args["key"].encode("utf-8"), data, algorithm).hexdigest()
    else:
        digest = hashlib.new(algorithm, data).hexdigest()
    return {"algorithm": algorithm, "hmac": "key" in args, "hex": digest}


async def base64_codec(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    text, action, urlsafe = args["text"], args["action"], bool(args.get("urlsafe"))
    _limit(text)
    if action == "encode":
        raw = text.encode("utf-8")
        encoded = b64.urlsafe_b64encode(raw) if urlsafe else b64.b64encode(raw)
        return {"action": action, "result": encoded.decode("ascii")}
    # Models often drop the padding; restore it rather than fail.
    compact = "".join(text.split())
    padded = compact + "=" * (-len(compact) % 4)
    try:
        raw = b64.urlsafe_b64decode(padded) if urlsafe else b64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ToolError(f"not valid base64: {exc}") from exc
    try:
        return {"action": action, "result": raw.decode("utf-8"), "binary": False}
    except UnicodeDecodeError:
        return {"action": action, "result": raw.hex(), "binary": True,
                "note": "decoded bytes are not UTF-8 text; shown as hex"}


async def url_parse(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        parts = urlsplit(args["url"])
        port = parts.port
    except ValueError as exc:
        raise ToolError(f"invalid URL: {exc}") from exc
    return {"scheme": parts.scheme, "host": parts.hostname, "port": port, "username": parts.username,
            "path": parts.path, "query": parts.query, "fragment": parts.fragment,
            "query_params": parse_qs(parts.query, keep_blank_values=True)}


TOOLS = [
    Tool("hash_text", "Hash a text (sha256 by default; md5, sha1, sha512, blake2b...) or compute an HMAC", {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "Text to hash (UTF-8)"},
                       "algorithm": {"type": "string", "enum": ALGORITHMS, "description": "Default sha256"},
                       "key": {"type": "string", "description": "If given, compute an HMAC with this key"}},
        "required": ["text"],
        "additionalProperties": False,
    }, hash_text),
    Tool("base64", "Encode text to base64 or decode base64 to text", {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": ["encode", "decode"]},
                       "text": {"type": "string", "description": "Text to encode, or base64 to decode"},
                       "urlsafe": {"type": "boolean", "description": "Use the URL-safe alphabet (- and _)"}},
        "required": ["action", "text"],
        "additionalProperties": False,
    }, base64_codec),
    Tool("url_parse", "Split a URL into scheme, host, port, path, query parameters and fragment", {
        "type": "object",
        "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 8192}},
        "required": ["url"],
        "additionalProperties": False,
    }, url_parse),
]

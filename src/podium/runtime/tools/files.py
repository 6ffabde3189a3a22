"""File tools confined to the workspace folder (settings.workspace_dir, under the data dir).

Every path is relative to the workspace. It is resolved (following symlinks) and refused unless
the result is still inside the resolved workspace, so `..`, absolute paths and symlinks pointing
out all fail the same check.
"""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from podium.runtime.tools.base import Tool, ToolContext, ToolError

MAX_READ_BYTES = 1_000_000
MAX_WRITE_BYTES = 1_000_000
MAX_ENTRIES = 500


def confine(ctx: ToolContext, relative: str) -> Path:
    """The absolute path for `relative` inside the workspace; ToolError if it would escape."""
    if "\x00" in relative:
        raise ToolError("path contains a NUL byte")
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).is_absolute() or relative.startswith("~"):
        raise ToolError(f"path must be relative to the workspace, not absolute: {relative!r}")
    root = ctx.workspace.resolve()
    root.mkdir(parents=True, exist_ok=True)
    target = (root / relative).resolve()
    if target != root and not target.is_relative_to(root):
        raise ToolError(f"path escapes the workspace: {relative!r}")
    return target


def _shown(ctx: ToolContext, path: Path) -> str:
    """A path as the model should see it: relative to the workspace."""
    return path.relative_to(ctx.workspace.resolve()).as_posix() or "."


def _read(path: Path, max_bytes: int) -> tuple[bytes, int]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        return handle.read(max_bytes), size


async def read_file(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    path = confine(ctx, args["path"])
    if not path.exists():
        raise ToolError(f"no such file: {args['path']!r}")
    if not path.is_file():
        raise ToolError(f"not a file: {args['path']!r}")
    limit = min(int(args.get("max_bytes", MAX_READ_BYTES)), MAX_READ_BYTES)
    data, size = await asyncio.to_thread(_read, path, limit)
    return {"path": _shown(ctx, path), "content": data.decode("utf-8", errors="replace"),
            "size": size, "truncated": size > len(data)}


def _write(path: Path, content: bytes, append: bool) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab" if append else "wb") as handle:
        handle.write(content)
    return path.stat().st_size


async def write_file(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    path = confine(ctx, args["path"])
    if path == ctx.workspace.resolve() or path.is_dir():
        raise ToolError(f"is a folder: {args['path']!r}")
    content = args["content"].encode("utf-8")
    append = args.get("mode", "overwrite") == "append"
    existing = path.stat().st_size if append and path.exists() else 0
    if existing + len(content) > MAX_WRITE_BYTES:
        raise ToolError(f"file would exceed {MAX_WRITE_BYTES} bytes")
    size = await asyncio.to_thread(_write, path, content, append)
    return {"path": _shown(ctx, path), "bytes_written": len(content), "size": size}


def _list(ctx: ToolContext, folder: Path, pattern: str, recursive: bool) -> tuple[list[dict[str, Any]], bool]:
    root = ctx.workspace.resolve()
    matches = folder.rglob(pattern) if recursive else folder.glob(pattern)
    entries: list[dict[str, Any]] = []
    for entry in matches:
        # A symlink inside the workspace may point out; list it only if its target stays in.
        if not entry.resolve().is_relative_to(root):
            continue
        if len(entries) == MAX_ENTRIES:
            return entries, True
        is_dir = entry.is_dir()
        entries.append({"path": entry.relative_to(root).as_posix(), "type": "folder" if is_dir else "file",
                        "size": None if is_dir else entry.stat().st_size})
    return sorted(entries, key=lambda e: e["path"]), False


async def list_files(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    folder = confine(ctx, args.get("path", "."))
    if not folder.is_dir():
        raise ToolError(f"not a folder: {args.get('path', '.')!r}")
    pattern = args.get("pattern", "*")
    if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        raise ToolError("pattern must stay inside the folder (no absolute paths or '..')")
    entries, truncated = await asyncio.to_thread(_list, ctx, folder, pattern, bool(args.get("recursive")))
    return {"path": _shown(ctx, folder), "entries": entries, "count": len(entries), "truncated": truncated}


_PATH = {"type": "string", "minLength": 1, "maxLength": 1024,
         "description": "Path relative to the workspace folder, e.g. 'notes/todo.txt'"}

TOOLS = [
    Tool("read_file", "Read a text file from the workspace folder", {
        "type": "object",
        "properties": {"path": _PATH,
                       "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_READ_BYTES,
                                     "description": f"Read at most this many bytes (default {MAX_READ_BYTES})"}},
        "required": ["path"],
        "additionalProperties": False,
    }, read_file),
    Tool("write_file", "Write (or append to) a text file in the workspace folder; parent folders are created", {
        "type": "object",
        "properties": {"path": _PATH,
                       "content": {"type": "string", "description": "Text to write (UTF-8)"},
                       "mode": {"type": "string", "enum": ["overwrite", "append"],
                                "description": "overwrite (default) or append"}},
        "required": ["path", "content"],
        "additionalProperties": False,
    }, write_file),
    Tool("list_files", "List files and folders in the workspace folder, optionally under a subfolder and "
         "matching a glob pattern", {
             "type": "object",
             "properties": {"path": {**_PATH, "description": "Subfolder relative to the workspace (default '.')"},
                            "pattern": {"type": "string", "minLength": 1, "maxLength": 256,
                                        "description": "Glob pattern, e.g. '*.md' or '**/*.json' (default '*')"},
                            "recursive": {"type": "boolean", "description": "Match in every subfolder too"}},
             "additionalProperties": False,
         }, list_files),
]

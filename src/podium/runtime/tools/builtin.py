"""The built-in tools, registered the same way a plugin's tools would be."""

from __future__ import annotations

from podium.runtime.tools import calculator, clock, data, encoding, files, generators, http, text, units
from podium.runtime.tools.base import ToolRegistry

MODULES = [clock, calculator, http, data, files, text, encoding, generators, units]


def register_builtins(registry: ToolRegistry) -> None:
    for module in MODULES:
        for tool in module.TOOLS:
            registry.register(tool)


def builtin_names() -> list[str]:
    return [tool.name for module in MODULES for tool in module.TOOLS]

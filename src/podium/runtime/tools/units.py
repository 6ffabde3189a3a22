"""Unit conversion over a small table: length, mass, volume, time, speed, data size, temperature.

Every linear unit is a factor to its dimension's base unit (metre, kilogram, litre, second, m/s,
byte); temperature is affine and handled on its own.
"""

from __future__ import annotations

import math
from typing import Any

from podium.runtime.tools.base import Tool, ToolContext, ToolError

LINEAR: dict[str, dict[str, float]] = {
    "length": {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144,
               "mi": 1609.344, "nmi": 1852.0},
    "mass": {"mg": 1e-6, "g": 0.001, "kg": 1.0, "t": 1000.0, "oz": 0.028349523125, "lb": 0.45359237,
             "st": 6.35029318},
    "volume": {"ml": 0.001, "cl": 0.01, "l": 1.0, "m3": 1000.0, "tsp": 0.00492892159375,
               "tbsp": 0.01478676478125, "cup": 0.2365882365, "pt": 0.473176473, "qt": 0.946352946,
               "gal": 3.785411784, "floz": 0.0295735295625},
    "time": {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "day": 86400.0, "week": 604800.0},
    "speed": {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 1852 / 3600, "ft/s": 0.3048},
    "data": {"B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 1024.0, "MiB": 1024.0**2,
             "GiB": 1024.0**3, "TiB": 1024.0**4},
}
TEMPERATURE = {"C", "F", "K"}
ALIASES = {"meter": "m", "metre": "m", "meters": "m", "kilometer": "km", "kilometers": "km", "mile": "mi",
           "miles": "mi", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in", "yard": "yd",
           "kilogram": "kg", "kilograms": "kg", "gram": "g", "grams": "g", "pound": "lb", "pounds": "lb",
           "lbs": "lb", "ounce": "oz", "ounces": "oz", "liter": "l", "litre": "l", "liters": "l",
           "gallon": "gal", "gallons": "gal", "second": "s", "seconds": "s", "minute": "min",
           "minutes": "min", "hour": "h", "hours": "h", "days": "day", "weeks": "week", "kph": "km/h",
           "celsius": "C", "fahrenheit": "F", "kelvin": "K", "°c": "C", "°f": "F"}
_CASE_SENSITIVE = set(LINEAR["data"]) | TEMPERATURE  # "MB" vs "mb" would otherwise be ambiguous


def canonical(unit: str) -> str:
    unit = unit.strip()
    if unit in _CASE_SENSITIVE:
        return unit
    lowered = unit.lower()
    if lowered in ALIASES:
        return ALIASES[lowered]
    if lowered in {"c", "f", "k"}:
        return lowered.upper()
    return next((u for table in LINEAR.values() for u in table if u.lower() == lowered), unit)


def _to_kelvin(value: float, unit: str) -> float:
    return {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"C": value - 273.15, "F": (value - 273.15) * 9 / 5 + 32, "K": value}[unit]


def convert(value: float, source: str, target: str) -> tuple[float, str]:
    if source in TEMPERATURE and target in TEMPERATURE:
        kelvin = _to_kelvin(value, source)
        if kelvin < 0:
            raise ToolError("below absolute zero")
        return _from_kelvin(kelvin, target), "temperature"
    for dimension, table in LINEAR.items():
        if source in table and target in table:
            return value * table[source] / table[target], dimension
    known = [u for u in (source, target) if u in TEMPERATURE or any(u in t for t in LINEAR.values())]
    if len(known) == 2:
        raise ToolError(f"cannot convert {source} to {target}: different kinds of quantity")
    unknown = next(u for u in (source, target) if u not in known)
    raise ToolError(f"unknown unit {unknown!r}; known: " + "; ".join(
        f"{d}: {', '.join(t)}" for d, t in {**LINEAR, "temperature": dict.fromkeys(TEMPERATURE)}.items()))


async def unit_convert(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    source, target = canonical(args["from"]), canonical(args["to"])
    result, dimension = convert(float(args["value"]), source, target)
    if not math.isfinite(result):
        raise ToolError("the result is too large to represent")
    return {"value": args["value"], "from": source, "to": target, "result": round(result, 10),
            "dimension": dimension}


TOOLS = [
    Tool("unit_convert", "Convert a value between units of length, mass, volume, time, speed, data size "
         "or temperature (e.g. 5 mi to km, 70 F to C, 2 GiB to MB)", {
             "type": "object",
             "properties": {"value": {"type": "number"},
                            "from": {"type": "string", "minLength": 1, "maxLength": 32,
                                     "description": "Source unit, e.g. 'km', 'lb', 'F', 'GiB'"},
                            "to": {"type": "string", "minLength": 1, "maxLength": 32, "description": "Target unit"}},
             "required": ["value", "from", "to"],
             "additionalProperties": False,
         }, unit_convert),
]

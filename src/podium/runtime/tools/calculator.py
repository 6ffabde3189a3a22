"""Arithmetic, parsed with `ast` and evaluated node by node: no eval, no names, no calls
but a short list of math functions."""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

from podium.runtime.tools.base import Tool, ToolContext, ToolError

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _round(value: float, ndigits: int | None = None) -> float:
    # round(5, -10**9) computes 10**(10**9): bound the digits like exponents.
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int) or abs(ndigits) > 100:
        raise ToolError("round's digits must be a whole number between -100 and 100")
    return round(value, ndigits)


_FUNCS = {"sqrt": math.sqrt, "abs": abs, "round": _round, "log": math.log, "log10": math.log10,
          "sin": math.sin, "cos": math.cos, "tan": math.tan, "floor": math.floor, "ceil": math.ceil,
          "min": min, "max": max}
_CONSTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 1000  # 10**10**10 would hang the server
MAX_RESULT_BITS = 14_000  # (9**999)**999 has a small exponent but a 3-billion-digit result;
# 14,000 bits is ~4,200 digits, under Python's 4,300-digit int-to-text limit.


def evaluate(expression: str) -> float | int:
    if len(expression) > 500:
        raise ToolError("expression too long (500 characters at most)")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc
    return _eval(tree.body)


def _check_power(base: Any, exponent: Any) -> None:
    """Refuse powers whose result would take unbounded time or memory to compute."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError("exponent too large")
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * exponent > MAX_RESULT_BITS:
        raise ToolError("result too large")


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ToolError("division by zero") from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTS:
        return _CONSTS[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords):
        return _FUNCS[node.func.id](*[_eval(a) for a in node.args])
    raise ToolError(f"unsupported element in expression: {ast.dump(node)[:60]}")


async def calculator(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        result = evaluate(args["expression"])
    except (ValueError, OverflowError, TypeError) as exc:
        raise ToolError(str(exc)) from exc
    if isinstance(result, complex):
        raise ToolError("the result is a complex number (e.g. a fractional power of a negative)")
    if (isinstance(result, float) and not math.isfinite(result)) or (
            isinstance(result, int) and result.bit_length() > MAX_RESULT_BITS):
        raise ToolError("the result is too large to represent")
    return {"expression": args["expression"], "result": result}


TOOLS = [
    Tool("calculator", "Evaluate an arithmetic expression (+ - * / // % **, sqrt, log, sin, pi, ...)", {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. '2 * (3 + 4) ** 2'"}},
        "required": ["expression"],
        "additionalProperties": False,
    }, calculator),
]

"""Conversation memory strategies: which past messages a run sends to the model.

- `sliding_window`: the last `max_turns` turns.
- `token_budget`: the newest messages that fit the model's context (`max_context_tokens`)
  beside the system prompt, the new message and room for the answer.
- `summary`: between `max_turns` and `2 * max_turns` recent turns verbatim; older turns are
  folded, `max_turns` at a time, into a summary written by the agent's model and stored, so
  the summary is written once per `max_turns` turns, not recomputed each turn.

Tokens are counted with the same estimate the providers use when a model reports none
(about four characters a token): Podium talks to many models and has no tokenizer for most.
"""

from __future__ import annotations

from typing import Any

from podium.runtime.providers.base import approx_tokens

SUMMARY_PROMPT = (
    "You maintain the running summary of a conversation. Fold the new messages into the "
    "previous summary. Keep names, facts, decisions, preferences and open questions; drop "
    "pleasantries. Answer with the updated summary only, in at most 200 words."
)


def message_tokens(message: dict[str, Any]) -> int:
    # A few tokens of framing per message, as chat formats add.
    return approx_tokens(str(message.get("content") or "")) + 4


def sliding_window(history: list[dict[str, Any]], max_turns: int) -> list[dict[str, Any]]:
    """The last `max_turns` turns (two messages each)."""
    return history[-max_turns * 2:]


def token_budget(history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest messages whose tokens add up to at most `budget`."""
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(history):
        used += message_tokens(message)
        if used > budget:
            break
        kept.append(message)
    return _from_user(list(reversed(kept)))


def fold_point(unsummarised: int, max_turns: int) -> int:
    """How many of the oldest unsummarised messages to fold now (0: none yet)."""
    keep = max_turns * 2
    return unsummarised - keep if unsummarised > 2 * keep else 0


def transcript(previous: str | None, messages: list[dict[str, Any]]) -> str:
    """The summariser's input: the previous summary and the messages to fold in."""
    lines = [f"Previous summary:\n{previous}\n" if previous else "Previous summary: (none)\n", "New messages:"]
    lines += [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines)


def summary_message(summary: str) -> dict[str, Any]:
    return {"role": "system", "content": f"Summary of the earlier conversation:\n{summary}"}


def _from_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A history that opens with an answer to a question it no longer shows confuses models.
    while messages and messages[0].get("role") != "user":
        messages = messages[1:]
    return messages

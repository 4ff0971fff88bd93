"""The conversation a request carries to its agent (`RunContext.messages`). Pure; a leaf.

A chat request is one user message. A Responses request (POST /v1/responses) keeps its whole
input -- every message, with its role -- and its `instructions` in its metadata under
`RESPONSES_KEY` (api/response_objects.Turn writes it); the agent is given all of it, not only the
last user message it runs on, so the built-in LLM agent sends the conversation the client sent,
as OpenAI would. Text content only: the Responses body refuses other parts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANSWER_OF", "RESPONSES_KEY", "ROLES", "messages_of", "pending_answers"]

RESPONSES_KEY = "errand.responses"
"""The metadata key a Response's own fields are kept under (refused in a client's metadata)."""
ROLES = frozenset({"system", "developer", "user", "assistant"})
ANSWER_OF = "answer_of"
"""An assistant message of `history` whose text is the answer of that request, not known yet
when this turn was submitted (its turn was still running); filled in as the turn starts."""


def messages_of(
    metadata: dict[str, Any], message: str, answers: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """`[{"role", "content"}, ...]`: `instructions` first as a system message, then the earlier
    turns of the chain (`history`, see api/responses.py; an `ANSWER_OF` message taken from
    `answers`, left out without one), then the input; just the user `message` for a request
    that is no Response."""
    turn = metadata.get(RESPONSES_KEY)
    if not isinstance(turn, dict) or not isinstance(turn.get("input"), list) or not turn["input"]:
        return [{"role": "user", "content": message}]
    instructions = turn.get("instructions") or None
    head = [{"role": "system", "content": instructions}] if isinstance(instructions, str) else []
    return head + _valid(turn.get("history"), answers or {}) + _valid(turn["input"], {})


def pending_answers(metadata: dict[str, Any]) -> list[str]:
    """The request ids whose answers `history` waits for (`ANSWER_OF`), in order."""
    turn = metadata.get(RESPONSES_KEY)
    history = turn.get("history") if isinstance(turn, dict) else None
    if not isinstance(history, list):
        return []
    return [
        item[ANSWER_OF] for item in history if isinstance(item, dict) and isinstance(item.get(ANSWER_OF), str)
    ]


def _valid(items: Any, answers: dict[str, str]) -> list[dict[str, str]]:
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        if not isinstance(item, dict) or item.get("role") not in ROLES:
            continue
        content = (
            answers.get(item[ANSWER_OF]) if isinstance(item.get(ANSWER_OF), str) else item.get("content")
        )
        if isinstance(content, str):
            found.append({"role": item["role"], "content": content})
    return found

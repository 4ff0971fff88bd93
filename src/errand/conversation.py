"""The conversation a request carries to its agent (`RunContext.messages`). Pure; a leaf.

A chat request is one user message. A Responses request (POST /v1/responses) keeps its whole
input -- every message, with its role -- and its `instructions` in its metadata under
`RESPONSES_KEY` (api/response_objects.Turn writes it); the agent is given all of it, not only the
last user message it runs on, so the built-in LLM agent sends the conversation the client sent,
as OpenAI would. Text content only: the Responses body refuses other parts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RESPONSES_KEY", "ROLES", "messages_of"]

RESPONSES_KEY = "errand.responses"
"""The metadata key a Response's own fields are kept under (refused in a client's metadata)."""
ROLES = frozenset({"system", "developer", "user", "assistant"})


def messages_of(metadata: dict[str, Any], message: str) -> list[dict[str, str]]:
    """`[{"role", "content"}, ...]`: `instructions` first as a system message, then the earlier
    turns of the chain (`history`, see api/responses.py), then the input; just the user
    `message` for a request that is no Response."""
    turn = metadata.get(RESPONSES_KEY)
    if not isinstance(turn, dict) or not isinstance(turn.get("input"), list) or not turn["input"]:
        return [{"role": "user", "content": message}]
    instructions = turn.get("instructions") or None
    head = [{"role": "system", "content": instructions}] if isinstance(instructions, str) else []
    return head + _valid(turn.get("history")) + _valid(turn["input"])


def _valid(items: Any) -> list[dict[str, str]]:
    if not isinstance(items, list):
        return []
    return [
        {"role": item["role"], "content": item["content"]}
        for item in items
        if isinstance(item, dict) and item.get("role") in ROLES and isinstance(item.get("content"), str)
    ]

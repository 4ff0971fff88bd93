"""The LLM agent's built-in `ask_user` tool: its definition, and the conversation it keeps.

When the model calls `ask_user`, the agent asks through `RunContext.ask` with the conversation
so far as the kept state (`Paused`): the request waits in input_required without a worker.
Once answered, the agent is run again; it restores the conversation from `ctx.input_state`,
adds the answer as the `ask_user` call's tool result, runs the calls the model asked for after
it, and goes on calling the model. Nothing is replayed: the model is not called twice for a
turn it already took.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

__all__ = ["ASK_USER", "Paused", "answer_text", "question_of", "tool_param"]

ASK_USER = "ask_user"
KIND = "errand.llm.ask_user"
"""Marks the kept state as this agent's, so another kind of state is never taken for it."""


def tool_param() -> ChatCompletionToolParam:
    return {
        "type": "function",
        "function": {
            "name": ASK_USER,
            "description": (
                "Ask the user a question and wait for their answer (it may take minutes or days). "
                "Use it only for information or a decision that only the user can give."
            ),
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string", "description": "What to ask, in full."}},
                "required": ["question"],
            },
        },
    }


def question_of(arguments: str) -> str | None:
    """The question of an ask_user call's arguments; None when they name none."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return None
    question = parsed.get("question") if isinstance(parsed, dict) else None
    return question if isinstance(question, str) and question.strip() else None


def answer_text(value: Any) -> str:
    """The tool result the model reads: a string answer as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Paused:
    """Where the conversation stood when the model asked: the messages up to and including
    its turn (and the tool results before the ask), the ask's call id, the calls after it,
    the step, and the token usage so far."""

    messages: list[ChatCompletionMessageParam]
    call_id: str
    rest: list[dict[str, str]] = field(default_factory=list)
    step: int = 1
    usage: dict[str, Any] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return {"kind": KIND, **asdict(self)}

    @classmethod
    def from_state(cls, state: Any) -> Paused | None:
        if not isinstance(state, dict) or state.get("kind") != KIND:
            return None
        return cls(
            list(state["messages"]),
            str(state["call_id"]),
            list(state["rest"]),
            int(state["step"]),
            state["usage"],
        )

"""A question a paused request waits on, and its answers: the values of `input_required`. No I/O.

Kept beside `models` (which re-exports them) so that module stays one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ON_TIMEOUT = ("fail", "cancel")
"""What an unanswered question's expiry does to its request (`InputAsk.on_timeout`)."""
INPUT_TIMEOUT = "InputTimeout"
"""The error type (`ErrorInfo.type`) of a request failed because its question expired unanswered."""


@dataclass(frozen=True, slots=True)
class InputAsk:
    """A question a running handler asked (`RunContext.ask`): the request waits for its answer.

    `id` is what the answer names; `schema` (a JSON Schema, or None) is what the answer must
    satisfy; `expires_at` (None: never) ends the request by `on_timeout` (fail | cancel)."""

    id: str
    prompt: str
    schema: dict[str, Any] | None = None
    expires_at: float | None = None
    on_timeout: str = "fail"
    asked_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stored form (every field)."""
        return {**self.public(), "on_timeout": self.on_timeout, "asked_at": self.asked_at}

    def public(self) -> dict[str, Any]:
        """The status document's `input_request`."""
        return {"id": self.id, "prompt": self.prompt, "schema": self.schema, "expires_at": self.expires_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> InputAsk | None:
        if not d:
            return None
        return cls(
            str(d["id"]),
            str(d.get("prompt", "")),
            d.get("schema"),
            d.get("expires_at"),
            str(d.get("on_timeout", "fail")),
            float(d.get("asked_at") or 0.0),
        )


def inputs_from(stored: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Answers as stored (a list of {id, value}, in ask order) -> {input id: value}, in order."""
    return {str(item["id"]): item.get("value") for item in stored or []}


def input_messages_from(stored: list[dict[str, Any]] | None) -> dict[str, str]:
    """Answers as stored -> {message id: input id} of those sent as a protocol message (an A2A
    message with a taskId): what makes a retried send of that message a no-op."""
    return {str(item["message_id"]): str(item["id"]) for item in stored or [] if item.get("message_id")}

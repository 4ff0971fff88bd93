"""What an attempt reports about a request: its progress, its result, its error. No I/O.

Beside models.py (which re-exports them): the status document, events and webhook bodies carry
their `to_dict()` forms, and readers rebuild them with `from_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float | None = None
    message: str | None = None
    step: int | None = None
    total_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "message": self.message,
            "step": self.step,
            "total_steps": self.total_steps,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Progress | None:
        if not d:
            return None
        return cls(d.get("percent"), d.get("message"), d.get("step"), d.get("total_steps"))


@dataclass(frozen=True, slots=True)
class Result:
    """What an agent produced. `extra` holds anything else the agent returned (usage, data)."""

    text: str
    agent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "text": self.text, "agent": self.agent}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Result | None:
        if d is None:
            return None
        extra = {k: v for k, v in d.items() if k not in ("text", "agent")}
        return cls(str(d.get("text", "")), d.get("agent"), extra)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failed attempt's error. `traceback` (where an exception was raised) goes only to the
    attempt log (`AttemptRecord`): never into `to_dict`, so never into the status document, an
    event or a webhook body, which an owner reads."""

    type: str
    message: str
    retryable: bool = False
    traceback: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "retryable": self.retryable}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ErrorInfo | None:
        if d is None:
            return None
        return cls(str(d.get("type", "Error")), str(d.get("message", "")), bool(d.get("retryable")))

"""An errand request as an OpenAI Response object, and the response id <-> request id mapping.

Pure (no I/O): a Response IS an errand request of kind `response`, so everything here is
computed from the stored request. What the Responses API has and a chat request has not (the
model name, `background`, `instructions`, the input messages, `previous_response_id`) is kept
in the request's metadata under the reserved key `errand.responses` (`Turn`), beside the
client's own metadata, so no second store exists. `STATUS` is the one errand -> OpenAI status
table (a new errand state such as `input_required` is added there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from errand.conversation import ANSWER_OF, RESPONSES_KEY
from errand.models import ErrorInfo, Request, Status

KIND = "response"
"""The `kind` of a request created by POST /v1/responses (what GET /v1/requests shows)."""
EXTRAS = RESPONSES_KEY
"""The metadata key a Response's own fields are kept under (refused in client metadata)."""
RESPONSE_PREFIX = "resp_"
REQUEST_PREFIX = "req_"
MESSAGE_PREFIX = "msg_"

STATUS: dict[Status, str] = {
    Status.PENDING: "queued",
    Status.PROCESSING: "in_progress",
    Status.INPUT_REQUIRED: "in_progress",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}
"""errand status -> OpenAI Response status. `input_required` reads `in_progress`: the Response
resumes once answered, and OpenAI clients treat `incomplete` as final and stop polling. OpenAI's
`incomplete` (output cut short by a token limit) has no errand counterpart and is never produced."""


def response_id(request_id: str) -> str:
    """`req_X` -> `resp_X`: the Response's id names its request, so no mapping is stored."""
    return RESPONSE_PREFIX + request_id.removeprefix(REQUEST_PREFIX)


def request_id_of(resp_id: str) -> str | None:
    """`resp_X` -> `req_X`; None for text that is not a response id (answered 404)."""
    if not resp_id.startswith(RESPONSE_PREFIX) or len(resp_id) == len(RESPONSE_PREFIX):
        return None
    return REQUEST_PREFIX + resp_id.removeprefix(RESPONSE_PREFIX)


def message_id(request_id: str) -> str:
    """The id of the one output message: stable, so a replayed stream names the same item."""
    return MESSAGE_PREFIX + request_id.removeprefix(REQUEST_PREFIX)


@dataclass(frozen=True, slots=True)
class Turn:
    """The Response fields errand keeps in the request's metadata (`EXTRAS`)."""

    model: str
    background: bool
    instructions: str | None = None
    previous_response_id: str | None = None
    input: list[dict[str, str]] = field(default_factory=list)
    """The input as messages `{"role", "content"}` (content joined to one text)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The earlier turns of a `previous_response_id` chain, as messages (see `chain_of`)."""

    def to_metadata(self, client: dict[str, Any]) -> dict[str, Any]:
        """The request's metadata: the client's, plus this turn under EXTRAS."""
        mine = {
            "model": self.model,
            "background": self.background,
            "instructions": self.instructions,
            "previous_response_id": self.previous_response_id,
            "input": self.input,
            "history": self.history,
        }
        return {**client, EXTRAS: mine}

    @classmethod
    def of(cls, req: Request) -> Turn:
        mine = req.metadata.get(EXTRAS)
        if not isinstance(mine, dict):  # not a Response; shown with what the request knows
            return cls(model=req.agent or "", background=True)
        return cls(
            model=str(mine.get("model") or req.agent or ""),
            background=bool(mine.get("background")),
            instructions=mine.get("instructions"),
            previous_response_id=mine.get("previous_response_id"),
            input=list(mine.get("input") or []),
            history=list(mine.get("history") or []),
        )


def chain_of(previous: Request) -> list[dict[str, Any]]:
    """The conversation a turn continuing `previous` starts from: its own history and input,
    then its answer as the assistant's message: the text when it has completed; while it still
    runs, an `ANSWER_OF` placeholder the worker fills in as this turn starts (errand/
    conversation.py; the turns of a chain run in order). Its `instructions` are not carried
    over, as with OpenAI."""
    turn = Turn.of(previous)
    if previous.status is Status.COMPLETED and previous.result is not None:
        answer: list[dict[str, Any]] = [{"role": "assistant", "content": previous.result.text}]
    else:
        answer = [] if previous.is_terminal else [{"role": "assistant", ANSWER_OF: previous.id}]
    return [*turn.history, *turn.input, *answer]


def client_metadata(req: Request) -> dict[str, Any]:
    """The metadata the client sent (without errand's EXTRAS)."""
    return {k: v for k, v in req.metadata.items() if k != EXTRAS}


def is_response(req: Request) -> bool:
    return req.kind == KIND


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a Response shows beyond its fixed fields: status, text, error, usage."""

    status: str
    text: str | None = None
    error: dict[str, str] | None = None
    usage: dict[str, Any] | None = None
    completed_at: float | None = None


def outcome_of(req: Request) -> Outcome:
    """The stored request's outcome (GET, create, cancel answers)."""
    status = STATUS[req.status]
    if req.status is Status.COMPLETED and req.result is not None:
        usage = usage_of(req.result.extra.get("usage"))
        return Outcome(status, req.result.text, None, usage, req.completed_at)
    if req.status is Status.FAILED:
        return Outcome(status, None, error_of(req.error), None, req.completed_at)
    return Outcome(status, completed_at=req.completed_at)


def error_of(error: ErrorInfo | dict[str, Any] | None) -> dict[str, str]:
    """A failed request's error as OpenAI's `{code, message}` (the agent's error type kept)."""
    if error is None:
        return {"code": "server_error", "message": "the request failed"}
    info = error if isinstance(error, ErrorInfo) else ErrorInfo.from_dict(error)
    assert info is not None
    return {"code": "server_error", "message": f"{info.type}: {info.message}"}


def usage_of(usage: Any) -> dict[str, Any] | None:
    """An agent's reported usage in OpenAI's Responses shape; None when it reported none.

    Accepts the Responses names (input_tokens/output_tokens) and the Chat Completions names
    (prompt_tokens/completion_tokens) errand's LLM agent reports."""
    if not isinstance(usage, dict):
        return None
    got_in = usage.get("input_tokens", usage.get("prompt_tokens"))
    got_out = usage.get("output_tokens", usage.get("completion_tokens"))
    if not isinstance(got_in, int) or not isinstance(got_out, int):
        return None
    total = usage.get("total_tokens")
    return {
        "input_tokens": got_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": got_out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total if isinstance(total, int) else got_in + got_out,
    }


def message_item(request_id: str, text: str, status: str) -> dict[str, Any]:
    """The assistant message output item holding `text`."""
    return {
        "type": "message",
        "id": message_id(request_id),
        "role": "assistant",
        "status": status,
        "content": [output_text(text)] if status != "in_progress" else [],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(req: Request, outcome: Outcome | None = None) -> dict[str, Any]:
    """The Response object of a request: its fixed fields and `outcome` (default: as stored)."""
    got = outcome if outcome is not None else outcome_of(req)
    turn = Turn.of(req)
    output = [] if got.text is None else [message_item(req.id, got.text, "completed")]
    return {
        "id": response_id(req.id),
        "object": "response",
        "created_at": int(req.created_at),
        "status": got.status,
        "background": turn.background,
        "model": turn.model,
        "instructions": turn.instructions,
        "previous_response_id": turn.previous_response_id,
        "metadata": client_metadata(req),
        "output": output,
        "output_text": got.text or "",
        "error": got.error,
        "incomplete_details": None,
        "usage": got.usage,
        "completed_at": None if got.completed_at is None else int(got.completed_at),
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
        "temperature": None,
        "top_p": None,
        "text": {"format": {"type": "text"}},
    }

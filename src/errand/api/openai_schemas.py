"""OpenAI's Responses API shapes (api/responses.py), as /openapi.json documents them.

They are OpenAI's, not errand's, so `extra` is allowed (except on the error body). Re-exported by
api/schemas.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _OpenAI(BaseModel):
    model_config = ConfigDict(extra="allow")


class OutputText(_OpenAI):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]


class OutputMessage(_OpenAI):
    type: Literal["message"]
    id: str
    role: Literal["assistant"]
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class ResponseObject(_OpenAI):
    """An OpenAI Response: one errand request of kind `response`."""

    id: str = Field(description="`resp_` + the request id without its `req_` prefix.")
    object: Literal["response"]
    created_at: int
    status: Literal["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]
    background: bool
    model: str = Field(description="The agent that runs it.")
    instructions: str | None
    previous_response_id: str | None
    metadata: dict[str, str]
    output: list[OutputMessage]
    output_text: str
    error: dict[str, str] | None
    usage: dict[str, Any] | None
    completed_at: int | None


class ResponseDeleted(_OpenAI):
    """What DELETE answers (OpenAI's shape); the response is then gone (404)."""

    id: str
    object: Literal["response.deleted"]
    deleted: Literal[True]


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape, answered on the /v1/responses routes."""

    model_config = ConfigDict(extra="forbid")

    error: dict[str, str | None] = Field(description="`message`, `type`, `param`, `code`.")

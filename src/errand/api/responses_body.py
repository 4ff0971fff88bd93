"""The body of POST /v1/responses (OpenAI's Responses API) and its input as chat messages.

Validated strictly where it matters (types, sizes, OpenAI's metadata limits), and unknown
fields refused as on /v1/chat. Sampling and output settings OpenAI clients commonly send
(`temperature`, `max_output_tokens`, `store`...) are accepted and ignored: errand runs the
formation's agent with its own configuration. Tools are refused (the agent's own tools run),
as are input parts other than text.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from errand.api.body import invalid_from
from errand.api.response_objects import EXTRAS
from errand.errors import InvalidRequest

MAX_METADATA_KEYS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None


class InputMessage(BaseModel):
    """One input message; `id` and `status` are accepted so an earlier output can be sent back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[TextPart]
    id: str | None = None
    status: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ResponsesBody(BaseModel):
    """POST /v1/responses. `model` names the errand agent that runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, max_length=128)
    input: str | list[InputMessage]
    instructions: str | None = None
    background: bool = Field(default=False, strict=True)
    stream: bool = Field(default=False, strict=True)
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=160)
    tools: list[Any] | None = None
    # Accepted and ignored (the agent's configuration decides):
    store: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    user: str | None = None
    parallel_tool_calls: bool | None = None
    tool_choice: Any = None
    truncation: str | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    service_tier: str | None = None
    include: list[str] | None = None
    stream_options: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None

    @field_validator("metadata")
    @classmethod
    def _openai_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        for key, item in value.items():
            if len(key) > MAX_KEY_CHARS or len(item) > MAX_VALUE_CHARS:
                raise ValueError(f"keys up to {MAX_KEY_CHARS} and values up to {MAX_VALUE_CHARS} characters")
            if key == EXTRAS:
                raise ValueError(f"the key {EXTRAS!r} is reserved")
        return value

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("tools are not supported: the agent named by model runs with its own tools")
        return value

    def messages(self) -> list[dict[str, str]]:
        """The input as `{"role", "content"}` messages; a string is one user message."""
        if isinstance(self.input, str):
            return [{"role": "user", "content": self.input}]
        return [{"role": m.role, "content": m.text()} for m in self.input]

    def message(self) -> str:
        """The text the agent runs on: the last user message (the whole list is ctx.messages)."""
        users = [m["content"] for m in self.messages() if m["role"] == "user"]
        if not users or not users[-1].strip():
            raise InvalidRequest("input must end with a non-empty user message", details={"field": "input"})
        return users[-1]


_FIELDS = sorted(ResponsesBody.model_fields)


def validate_responses(data: dict[str, Any]) -> ResponsesBody:
    """The body as a ResponsesBody, or an InvalidRequest naming the first bad field."""
    try:
        return ResponsesBody.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc, _FIELDS) from None

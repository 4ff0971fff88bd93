"""LLM agents: an OpenAI-compatible chat model, streamed, with a bounded tool-calling loop.

The official `openai` package talks to the provider, so any OpenAI-compatible endpoint works
(OpenAI, vLLM, Ollama, LiteLLM, ...). Its own retries are off (`max_retries=0`): errand's engine
owns retries and backoff, so a provider's 429 is one failed attempt whose TransientError carries
the provider's `Retry-After`. Provider errors are judged in one place, `classify_error`
(agents/provider_errors.py, shared with the framework adapters), by class and status, never by
message. Content deltas reach the request's event stream as the model
writes them (`ctx.emit`); every model call and every tool call is a cancellation checkpoint.
With tracing on, each model call is a GenAI `chat {model}` span (model, tokens, finish reason)
and each tool call an `execute_tool {name}` span, inside the attempt's span (tracing.py).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import openai
from openai import AsyncStream, omit
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolMessageParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from errand import tracing
from errand.agents import ask_user
from errand.agents._openai import LoopClient
from errand.agents.base import RunContext
from errand.agents.provider_errors import classify_provider_error, parse_retry_after
from errand.agents.tools import Tool, ToolResult, load_tools
from errand.errors import AgentError, ConfigError, PermanentError
from errand.models import Result

if TYPE_CHECKING:
    from errand.config import AgentConfig, ModelConfig

__all__ = ["LlmAgent", "classify_error", "parse_retry_after"]

_HINTS = {
    401: " (check the agent's model.api_key)",
    403: " (the API key is not allowed to use this model or endpoint)",
    404: " (check model.name and model.base_url)",
}
_PREVIEW = 200


def classify_error(exc: BaseException, model: ModelConfig) -> AgentError:
    """The one mapping of provider failures (agents/provider_errors.py), named for this model."""
    where = f"model {model.name!r} at {model.base_url or 'the OpenAI API'}"
    return classify_provider_error(
        exc, where, within=f"within model.timeout ({model.timeout:g}s)", hints=_HINTS
    )


@dataclass
class _PendingCall:
    """A tool call as its fragments arrive over the stream (the arguments come in pieces)."""

    id: str = ""
    name: str = ""
    arguments: str = ""

    def add(self, delta: ChoiceDeltaToolCall) -> None:
        if delta.id:
            self.id = delta.id
        if delta.function is not None:
            self.name += delta.function.name or ""
            self.arguments += delta.function.arguments or ""


@dataclass
class _Reply:
    """One model call's outcome: its text, the tools it asked for, and its token usage."""

    text: str = ""
    calls: list[_PendingCall] = field(default_factory=list)
    usage: CompletionUsage | None = None
    finish_reason: str | None = None

    def assistant_message(self) -> ChatCompletionMessageParam:
        """The model's turn as it must be sent back before the tool results."""
        return {
            "role": "assistant",
            "content": self.text or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.calls
            ],
        }


@dataclass
class _Usage:
    """Token counts summed over every model call of a run; None when the server reports none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reported: bool = False

    def add(self, usage: CompletionUsage | None) -> None:
        if usage is None:
            return
        self.reported = True
        self.prompt_tokens += usage.prompt_tokens or 0
        self.completion_tokens += usage.completion_tokens or 0
        self.total_tokens += usage.total_tokens or 0

    def to_dict(self) -> dict[str, int] | None:
        if not self.reported:
            return None
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


async def _read_stream(stream: AsyncStream[ChatCompletionChunk], ctx: RunContext) -> _Reply:
    """Emit content deltas as they come; assemble tool calls from their fragments."""
    reply = _Reply()
    text: list[str] = []
    by_index: dict[int, _PendingCall] = {}
    async for chunk in stream:
        if chunk.usage is not None:
            reply.usage = chunk.usage
        for choice in chunk.choices[:1]:
            if choice.delta.content:
                ctx.emit(choice.delta.content)
                text.append(choice.delta.content)
            for delta in choice.delta.tool_calls or []:
                pending = by_index.get(delta.index)
                # Some servers reuse index 0 for every call; a new id then means a new call.
                if pending is None or (delta.id and pending.id and delta.id != pending.id):
                    pending = by_index[delta.index] = _PendingCall()
                    reply.calls.append(pending)
                pending.add(delta)
            reply.finish_reason = choice.finish_reason or reply.finish_reason
    reply.text = "".join(text)
    return reply


class LlmAgent:
    """An agent backed by an OpenAI-compatible chat model, optionally with Python tools."""

    def __init__(self, config: AgentConfig, *, base_dir: str = ".") -> None:
        if config.model is None:
            raise ConfigError(f"agent {config.id!r}: an LLM agent needs `model`")
        self.id = config.id
        self.description = config.description
        self.config = config
        self.model: ModelConfig = config.model
        self.tools: dict[str, Tool] = load_tools(
            config.tools, base_dir=base_dir, where=f"agent {config.id!r}: tools"
        )
        self._tool_params = [t.to_openai() for t in self.tools.values()]
        if config.ask_user:
            self._tool_params.append(ask_user.tool_param())
        self._clients = LoopClient(self.model)

    def __repr__(self) -> str:
        return f"LlmAgent({self.id!r}, model={self.model.name!r}, tools={list(self.tools)})"

    async def run(self, message: str, ctx: RunContext) -> Result:
        """Call the model until it answers without asking for tools, at most `max_steps` times.
        Resumed after an `ask_user` (see agents/ask_user.py), it goes on from where it paused."""
        messages, usage, first = await self._start(message, ctx)
        max_steps = self.config.max_steps
        asked_for: list[str] = []
        for step in range(first, max_steps + 1):
            await ctx.checkpoint()
            reply = await self._complete(messages, ctx)
            usage.add(reply.usage)
            if not reply.calls:
                extra = {"usage": usage.to_dict(), "model": self.model.name, "steps": step}
                return Result(reply.text, self.id, {**extra, "finish_reason": reply.finish_reason})
            asked_for = [c.name for c in reply.calls]
            if step < max_steps:  # after the last step no model would read the results: skip them
                messages.append(reply.assistant_message())
                await self._call_tools(reply.calls, messages, step, ctx, usage)
        raise PermanentError(
            f"agent {self.id!r} reached max_steps={max_steps} and the model still asked for "
            f"tools ({', '.join(asked_for)}); raise `max_steps` or simplify the task"
        )

    async def _start(
        self, message: str, ctx: RunContext
    ) -> tuple[list[ChatCompletionMessageParam], _Usage, int]:
        """(messages, usage, first step): a new conversation, or the one an ask_user paused,
        with the answer as that call's result and the calls after it run."""
        paused = ask_user.Paused.from_state(ctx.input_state) if self.config.ask_user else None
        if paused is None or not ctx.inputs:
            return self._initial_messages(message, ctx), _Usage(), 1
        messages, usage = paused.messages, _Usage(**paused.usage)
        answer = ask_user.answer_text(ctx.resumed_answer())
        messages.append({"role": "tool", "tool_call_id": paused.call_id, "content": answer})
        rest = [_PendingCall(**c) for c in paused.rest]
        await self._call_tools(rest, messages, paused.step, ctx, usage)
        return messages, usage, paused.step + 1

    async def _call_tools(
        self,
        calls: list[_PendingCall],
        messages: list[ChatCompletionMessageParam],
        step: int,
        ctx: RunContext,
        usage: _Usage,
    ) -> None:
        """Run the calls in order, each result appended; an ask_user call pauses the request
        (ctx.ask raises InputRequested with the conversation so far as its state)."""
        for index, call in enumerate(calls):
            if call.name == ask_user.ASK_USER and self.config.ask_user:
                call.id = call.id or f"call_{step}_{index}"
                rest = [dataclasses.asdict(c) for c in calls[index + 1 :]]
                paused = ask_user.Paused(list(messages), call.id, rest, step, dataclasses.asdict(usage))
                messages.append(await self._ask(call, paused, ctx))
            else:
                messages.append(await self._call_tool(call, step, index, ctx))

    async def _ask(
        self, call: _PendingCall, paused: ask_user.Paused, ctx: RunContext
    ) -> ChatCompletionToolMessageParam:
        """The ask_user call's result: an error the model should see, or (once answered) the answer."""
        question = ask_user.question_of(call.arguments)
        if question is None:
            text = "Error: ask_user needs a non-empty string `question`"
        else:
            timeout = self.config.ask_user_timeout
            text = ask_user.answer_text(await ctx.ask(question, timeout=timeout, state=paused.to_state()))
        return {"role": "tool", "tool_call_id": call.id, "content": text}

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        await self._clients.aclose()

    def _initial_messages(self, message: str, ctx: RunContext) -> list[ChatCompletionMessageParam]:
        """The agent's `system_prompt`, then the request's conversation (`ctx.messages`: a
        Response's instructions and input list), or the one message outside a worker."""
        messages: list[ChatCompletionMessageParam] = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        for item in ctx.messages or [{"role": "user", "content": message}]:
            messages.append(_chat_message(item))
        return messages

    async def _complete(self, messages: list[ChatCompletionMessageParam], ctx: RunContext) -> _Reply:
        """One model call, as a GenAI `chat` span (semantic conventions: model, usage, finish)."""
        name = self.model.name
        with tracing.span(f"chat {name}", kind="client", attributes=self._span_attributes) as span:
            reply = await self._call_model(messages, ctx)
            span.set_attributes(_usage_attributes(reply))
            return reply

    @functools.cached_property
    def _span_attributes(self) -> dict[str, str | int]:
        url = httpx.URL(self.model.base_url or "https://api.openai.com/v1")
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": self.model.name,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }

    async def _call_model(self, messages: list[ChatCompletionMessageParam], ctx: RunContext) -> _Reply:
        client = self._clients.get()
        try:
            stream = await client.chat.completions.create(
                model=self.model.name,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                temperature=self.config.temperature if self.config.temperature is not None else omit,
                max_tokens=self.config.max_tokens if self.config.max_tokens is not None else omit,
                tools=self._tool_params or omit,
            )
            async with stream:
                return await _read_stream(stream, ctx)
        except (openai.OpenAIError, httpx.TransportError) as exc:
            raise classify_error(exc, self.model) from exc

    async def _call_tool(
        self, call: _PendingCall, step: int, index: int, ctx: RunContext
    ) -> ChatCompletionToolMessageParam:
        """Run one requested tool; its result (or the error the model should see) goes back to it."""
        await ctx.checkpoint()
        ctx.progress(message=f"Calling tool {call.name}", step=step, total_steps=self.config.max_steps)
        call.id = call.id or f"call_{step}_{index}"  # some servers omit ids; the reply must name one
        tool = self.tools.get(call.name)
        started = time.monotonic()
        with tracing.span(f"execute_tool {call.name}", attributes=_tool_attributes(call)) as span:
            if tool is None:
                known = ", ".join(self.tools) or "none"
                outcome = ToolResult(
                    f"Error: there is no tool named {call.name!r}; available: {known}", is_error=True
                )
            else:
                outcome = await tool.call(call.arguments, ctx.threads)
            if outcome.is_error:
                tracing.fail(span, "tool_error", _preview(outcome.text))
        ctx.event(
            "tool_call",
            {
                "id": call.id,
                "name": call.name,
                "arguments": _preview(call.arguments),
                "result": _preview(outcome.text),
                "error": outcome.is_error,
                "step": step,
                "duration_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return {"role": "tool", "tool_call_id": call.id, "content": outcome.text}


def _usage_attributes(reply: _Reply) -> dict[str, int | list[str]]:
    """GenAI attributes known once a model call has answered."""
    found: dict[str, int | list[str]] = {}
    if reply.usage is not None:
        found["gen_ai.usage.input_tokens"] = reply.usage.prompt_tokens or 0
        found["gen_ai.usage.output_tokens"] = reply.usage.completion_tokens or 0
    if reply.finish_reason is not None:
        found["gen_ai.response.finish_reasons"] = [reply.finish_reason]
    return found


def _tool_attributes(call: _PendingCall) -> dict[str, str]:
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    }


def _preview(text: str) -> str:
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _chat_message(item: dict[str, str]) -> ChatCompletionMessageParam:
    """A conversation message for Chat Completions; `developer` is sent as `system`, which every
    OpenAI-compatible server accepts (many local ones refuse `developer`)."""
    role, content = item["role"], item["content"]
    if role == "assistant":
        return {"role": "assistant", "content": content}
    if role == "user":
        return {"role": "user", "content": content}
    return {"role": "system", "content": content}

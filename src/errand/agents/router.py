"""The optional LLM router: one model call picks the agent for a request that names none.

A multi-agent formation routes a request by its `agent_id`; without one, the default agent
answers -- unless `router: {model: ...}` is configured, in which case a single non-streaming
chat completion is shown the agents' ids and descriptions and asked for one id. Routing must
never be the reason a request fails: a provider error, a timeout or an answer that names no
configured agent falls back to the default agent, and the Routing value says so (the worker
reports it as a `routed` event). It runs in the worker, before the agent, never in the HTTP
request path: a model call can take seconds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openai.types.chat import ChatCompletionMessageParam

from errand.agents._openai import LoopClient

if TYPE_CHECKING:
    from errand.config import RouterConfig

__all__ = ["DEFAULT_INSTRUCTIONS", "LlmRouter", "Routing", "parse_choice"]

log = logging.getLogger("errand.router")

DEFAULT_INSTRUCTIONS = (
    "You route a user's request to the one agent best suited to handle it. "
    "Answer with the agent's id only: no other words, no punctuation, no explanation."
)
_ANSWER_TOKENS = 32
"""An id is a few tokens; a longer answer is cut (and then matched leniently)."""
_WORD = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Routing:
    """Which agent runs a request, and why: `model` (the router chose it) or `default`
    (the fallback; `reason` says what went wrong)."""

    agent: str
    by: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "by": self.by, "reason": self.reason}


def parse_choice(answer: str, ids: Sequence[str]) -> str | None:
    """The configured id a model's answer names, or None.

    Exact match first (ignoring case, quotes, backticks and a trailing period); else the one
    configured id that appears as a word of the answer ("I pick `researcher`."); two or more
    different ids mentioned is no choice at all."""
    by_lower = {i.lower(): i for i in ids}
    cleaned = answer.strip().strip("`'\"*").rstrip(".").strip().lower()
    if cleaned in by_lower:
        return by_lower[cleaned]
    words = {w.lower().rstrip(".") for w in _WORD.findall(answer)}
    named = {by_lower[w] for w in words if w in by_lower}
    return named.pop() if len(named) == 1 else None


class LlmRouter:
    """Asks an OpenAI-compatible model which agent should answer a message."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.model = config.model
        self._clients = LoopClient(self.model)

    def __repr__(self) -> str:
        return f"LlmRouter(model={self.model.name!r})"

    async def choose(self, message: str, agents: Sequence[tuple[str, str]], default: str) -> Routing:
        """The agent for `message` among `agents` ([(id, description)]); never raises but for
        cancellation: any failure is a Routing to `default` that names the reason."""
        ids = [agent_id for agent_id, _ in agents]
        try:
            answer = await self._ask(message, agents)
        except Exception as exc:  # any failure of the router: the default agent answers
            reason = f"router model {self.model.name!r} failed: {type(exc).__name__}: {exc}"
            log.warning("%s; using the default agent %r", reason, default)
            return Routing(default, "default", reason[:300])
        chosen = parse_choice(answer, ids)
        if chosen is None:
            reason = f"router answer {answer[:80]!r} names no configured agent"
            log.warning("%s; using the default agent %r", reason, default)
            return Routing(default, "default", reason)
        return Routing(chosen, "model")

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        await self._clients.aclose()

    def messages(self, message: str, agents: Sequence[tuple[str, str]]) -> list[ChatCompletionMessageParam]:
        """The routing prompt: instructions and the agent list as system text, the message as user."""
        listing = "\n".join(f"- {agent_id}: {about or '(no description)'}" for agent_id, about in agents)
        instructions = self.config.system_prompt or DEFAULT_INSTRUCTIONS
        return [
            {"role": "system", "content": f"{instructions}\n\nAgents:\n{listing}"},
            {"role": "user", "content": message},
        ]

    async def _ask(self, message: str, agents: Sequence[tuple[str, str]]) -> str:
        completion = await self._clients.get().chat.completions.create(
            model=self.model.name,
            messages=self.messages(message, agents),
            temperature=0,
            max_tokens=_ANSWER_TOKENS,
        )
        if not completion.choices:
            raise ValueError("the model returned no choices")
        return completion.choices[0].message.content or ""

"""A weather assistant written with PydanticAI, run by errand (formation.yaml beside it).

errand's part is the last line: `pydantic_ai.handler(agent)` streams the run's events, reports
tool calls as progress and text as content, and stops the run on cancel or task_timeout.
"""

from __future__ import annotations

import asyncio
import os

from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from errand.adapters import pydantic_ai as errand_pydantic_ai

client = AsyncOpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL") or None,  # None: the OpenAI API
    api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",  # local servers often need none
    max_retries=0,  # errand retries a failed attempt (429/5xx/connection) with backoff
)

agent = Agent(
    OpenAIChatModel(
        os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), provider=OpenAIProvider(openai_client=client)
    ),
    instructions="Answer weather questions briefly. Use the tools.",
    name="weather assistant",
)


@agent.tool_plain
async def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"{city}: sunny, 21 °C"  # a stand-in for your weather API


@agent.tool_plain
async def slow_search(query: str, seconds: float) -> str:
    """Search the archive; takes `seconds` (a stand-in for a slow back-end call)."""
    await asyncio.sleep(seconds)
    return f"3 archived reports match {query!r}"


handler = errand_pydantic_ai.handler(agent)

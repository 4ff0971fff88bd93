"""A weather assistant written with the OpenAI Agents SDK, run by errand (formation.yaml beside it).

errand's part is the last line: `openai_agents.handler(agent)` streams the run, reports tool
calls as progress and text as content, and stops the run on cancel or task_timeout.
"""

from __future__ import annotations

import asyncio
import os

from agents import Agent, OpenAIChatCompletionsModel, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from errand.adapters import openai_agents

set_tracing_disabled(True)  # the SDK would send traces to OpenAI; errand has its own (tracing:)

client = AsyncOpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL") or None,  # None: the OpenAI API
    api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",  # local servers often need none
    max_retries=0,  # errand retries a failed attempt (429/5xx/connection) with backoff
)


@function_tool
async def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"{city}: sunny, 21 °C"  # a stand-in for your weather API


@function_tool
async def slow_search(query: str, seconds: float) -> str:
    """Search the archive; takes `seconds` (a stand-in for a slow back-end call)."""
    await asyncio.sleep(seconds)
    return f"3 archived reports match {query!r}"


agent = Agent(
    name="weather assistant",
    instructions="Answer weather questions briefly. Use the tools.",
    tools=[get_weather, slow_search],
    model=OpenAIChatCompletionsModel(
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), openai_client=client
    ),
)

handler = openai_agents.handler(agent)

"""A weather assistant written with LangGraph, run by errand (formation.yaml beside it).

A two-node graph, the usual tool loop: `model` answers or asks for tools, `tools` runs them.
errand's part is the last line: `langgraph.handler(graph)` streams the run, reports each node
as a step, tool calls as progress and tokens as content, and stops the run on cancel or
task_timeout.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import SecretStr

from errand.adapters import langgraph as errand_langgraph


@tool
async def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"{city}: sunny, 21 °C"  # a stand-in for your weather API


@tool
async def slow_search(query: str, seconds: float) -> str:
    """Search the archive; takes `seconds` (a stand-in for a slow back-end call)."""
    await asyncio.sleep(seconds)
    return f"3 archived reports match {query!r}"


TOOLS = [get_weather, slow_search]

llm = ChatOpenAI(
    model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
    base_url=os.environ.get("OPENAI_BASE_URL") or None,  # None: the OpenAI API
    api_key=SecretStr(os.environ.get("OPENAI_API_KEY") or "not-needed"),  # local servers often need none
    max_retries=0,  # errand retries a failed attempt (429/5xx/connection) with backoff
    streaming=True,
).bind_tools(TOOLS)


async def model(state: MessagesState) -> dict[str, Any]:
    system = {"role": "system", "content": "Answer weather questions briefly. Use the tools."}
    return {"messages": [await llm.ainvoke([system, *state["messages"]])]}


builder = StateGraph(MessagesState)
builder.add_node("model", model)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "model")
builder.add_conditional_edges("model", tools_condition)
builder.add_edge("tools", "model")
graph = builder.compile(name="weather assistant")

handler = errand_langgraph.handler(graph)

"""The response bodies of GET /v1/agents and /v1/agents/{id} (api/agents.py): what
/openapi.json documents for them. Beside api/schemas.py (which re-exports them), same rules:
the answers are plain dicts, these models their schema, `extra="forbid"`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentDocument(_Doc):
    """One configured agent, and how long it usually takes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "researcher",
                    "description": "Finds and compares information",
                    "default": True,
                    "kind": "llm",
                    "tools": ["http_get"],
                    "expected_seconds": 41.5,
                    "history_samples": 50,
                }
            ]
        }
    )

    id: str
    description: str
    default: bool = Field(description="Answers requests that name no agent_id.")
    kind: Literal["handler", "process", "llm"] = Field(
        description="handler: a Python function in the worker; process: one in a child process "
        "per attempt; llm: a model agent."
    )
    tools: list[str]
    expected_seconds: float | None = Field(
        description="p90 of the agent's recent run durations; null until it has enough history "
        "(then submit estimates from the message)."
    )
    history_samples: int = Field(description="Recent completed runs the estimate rests on.")


class AgentList(_Doc):
    agents: list[AgentDocument]
    count: int

"""A tool for the end-to-end LLM tests (`tools: ["tests.integration.llm_tools:add"]`)."""

from __future__ import annotations


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

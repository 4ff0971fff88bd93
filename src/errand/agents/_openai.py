"""One AsyncOpenAI client per event loop, shared by the LLM agent and the router."""

from __future__ import annotations

import asyncio

from openai import AsyncOpenAI

from errand.config import ModelConfig


class LoopClient:
    """An AsyncOpenAI client for the running loop: pooled connections belong to one loop, and
    errand's engine does the retries (max_retries=0)."""

    def __init__(self, model: ModelConfig) -> None:
        self.model = model
        self._client: AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = AsyncOpenAI(
                base_url=self.model.base_url,
                api_key=self.model.api_key or "not-needed",
                timeout=self.model.timeout,
                max_retries=0,
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

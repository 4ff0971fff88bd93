"""The response bodies of the console's routes (sessions, overview, cross-request lists, bulk
actions): what /openapi.json documents for them. Beside api/schemas.py, same rules: the answers
are plain dicts, these models their schema, and tests validate real answers against them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionDocument(_Doc):
    """The console session: its role, the CSRF token its changes must send, its expiry."""

    role: Literal["admin", "viewer"]
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change made with the cookie.")
    expires_at: float = Field(description="Epoch seconds; the cookie's Max-Age ends at the same time.")

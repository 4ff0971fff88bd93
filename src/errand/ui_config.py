"""The `ui:` section of formation.yaml: the web console and its sign-in sessions.

Its own module so config.py stays one screenful per concern; config.py composes it into Config.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = True
    """Serve the console under /ui (`errand serve --no-ui` turns it off for one run)."""
    session_ttl_seconds: int = Field(default=28800, ge=60, le=30 * 86400)
    """How long a console sign-in lasts (the cookie's Max-Age and the stored expiry)."""
    signin_failures_per_minute: int = Field(default=10, ge=1, le=10_000)
    """Failed sign-ins one client address may make per minute before 429 RATE_LIMITED."""

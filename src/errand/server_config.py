"""The `server:` section of formation.yaml: HTTP body, connection and header limits.

Its own module so config.py stays one screenful per concern; config.py composes it into Config
(and remains the only reader of os.environ).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    """Request bodies larger than this are refused with 413 PAYLOAD_TOO_LARGE."""
    max_wait_seconds: float = Field(default=60.0, ge=0)
    """The longest long-poll (`GET /v1/requests/{id}?wait=N`); larger waits are cut to this (and never
    past 60 s)."""
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    """An event stream silent this long gets a `: keepalive` comment, so proxies keep it open."""
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)
    """Open HTTP connections at once. At the cap a new connection closes the oldest one that is
    not running a request (idle, or still sending its headers); when every one is running a
    request, the new one gets 503. Lowered at start to fit the open-file limit."""
    keepalive_timeout_seconds: float = Field(default=5.0, gt=0, le=3600)
    """A connection with no request in progress (new, or between requests) is closed after this."""
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    """The request line and headers must arrive within this, from their first byte: else 408."""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Request line plus headers; a larger head is refused with 431 HEADERS_TOO_LARGE."""
    max_json_depth: int = Field(default=64, ge=2, le=200)
    """Request bodies nested deeper are refused (422 naming the field); stored JSON must stay
    well under orjson's 254 levels, as results and webhook bodies wrap it further."""
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    """Proxy addresses whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (uvicorn's
    proxy headers; its default is loopback): the client address then comes from the proxy, and
    `https` marks the console's session cookie Secure. From any other address they are ignored.
    `[]` trusts nobody; `["*"]` everybody."""

"""POST/GET/DELETE /ui/session: console sign-in with an admin or viewer key, and sign-out.

A sign-in stores a session row (store.create_session: the SHA-256 of a 256-bit random id, the
key's fingerprint, its role, a CSRF token, the expiry) and sets the id as the `errand_session`
cookie: HttpOnly, SameSite=Strict, Path=/, Max-Age=ui.session_ttl_seconds, and Secure when the
request came over TLS (https, or `X-Forwarded-Proto: https` from a `server.forwarded_allow_ips`
address). Every process on the database accepts the cookie, and sign-out revokes it for all of
them. A client key cannot sign in (403); a wrong key is 401, and more than
ui.signin_failures_per_minute of those from one address in a minute are 429.
"""

from __future__ import annotations

import logging
import secrets
import time

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from errand.api.body import read_model
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.api.session_auth import COOKIE, check_csrf, live_session, session_hash
from errand.api.signin_limit import SigninLimiter
from errand.console_models import ConsoleSession
from errand.errors import Forbidden, RateLimited, Unauthorized

log = logging.getLogger("errand.api")

NO_STORE = {"Cache-Control": "no-store"}


class SignInBody(BaseModel):
    """POST /ui/session: the admin or viewer key to sign in with."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=4096, description="An admin key or a viewer key.")


class ConsoleSessions:
    """The three handlers, sharing one failed-sign-in limiter per app."""

    def __init__(self, ctx: ApiContext) -> None:
        self._limiter = SigninLimiter(ctx.config.ui.signin_failures_per_minute)

    async def sign_in(self, request: Request, ctx: ApiContext) -> Response:
        """POST /ui/session."""
        address = request.client.host if request.client else "unknown"
        wait = self._limiter.retry_after(address, time.monotonic())
        if wait > 0:
            raise RateLimited("Too many failed sign-ins from this address", details={"retry_after": wait})
        server = ctx.config.server
        body = await read_model(request, SignInBody, server.max_body_bytes, server.max_json_depth)
        found = ctx.auth.find_key(body.key)
        if found is None:
            self._limiter.failed(address, time.monotonic())
            log.warning("console sign-in refused: unknown key (from %s)", address)
            raise Unauthorized("Invalid API key")
        key_id, role = found
        if role not in ("admin", "viewer"):
            log.warning("console sign-in refused: a client key %s (from %s)", key_id, address)
            raise Forbidden("Only an admin key or a viewer key can sign in to the console")
        ttl = ctx.config.ui.session_ttl_seconds
        now = ctx.clock.now()
        cookie = secrets.token_urlsafe(32)
        session = ConsoleSession(
            session_hash(cookie), key_id, role, secrets.token_urlsafe(32), now, now + ttl
        )
        await ctx.store.create_session(session)
        log.info("console sign-in: key %s as %s (from %s)", key_id, role, address)
        response = json_response(_document(session), headers=NO_STORE)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=ttl,
            path="/",
            secure=over_tls(request, ctx),
            httponly=True,
            samesite="strict",
        )
        return response

    async def current(self, request: Request, ctx: ApiContext) -> Response:
        """GET /ui/session: the live session of the cookie (the console asks on load), else 401."""
        session = await _cookie_session(request, ctx)
        return json_response(_document(session), headers=NO_STORE)

    async def sign_out(self, request: Request, ctx: ApiContext) -> Response:
        """DELETE /ui/session: needs the CSRF token; the session is revoked in every process."""
        session = await _cookie_session(request, ctx)
        check_csrf(request, session)
        await ctx.store.delete_session(session.id_hash)
        log.info("console sign-out: key %s", session.key_id)
        response = Response(status_code=204, headers=NO_STORE)
        response.delete_cookie(
            COOKIE, path="/", secure=over_tls(request, ctx), httponly=True, samesite="strict"
        )
        return response


async def _cookie_session(request: Request, ctx: ApiContext) -> ConsoleSession:
    cookie = request.cookies.get(COOKIE)
    if cookie is None:
        raise Unauthorized("Not signed in to the console")
    session = await live_session(ctx.store, cookie)
    ctx.auth.session_owner(session.key_id, session.role, {})  # the key is still configured
    return session


def _document(session: ConsoleSession) -> dict[str, object]:
    return {"role": session.role, "csrf_token": session.csrf_token, "expires_at": session.expires_at}


def over_tls(request: Request, ctx: ApiContext) -> bool:
    """Whether the browser reached us over TLS: directly, or through a trusted proxy that says so
    (uvicorn's proxy headers, given server.forwarded_allow_ips, already made the scheme https;
    the header is read here too for an ASGI server that does not rewrite it)."""
    if request.url.scheme == "https":
        return True
    client = request.client.host if request.client else None
    trusted = ctx.config.server.forwarded_allow_ips
    if client is None or (client not in trusted and "*" not in trusted):
        return False
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https"

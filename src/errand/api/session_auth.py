"""Who is calling, for every authenticated route: an API key (the SDK), else the console's
session cookie; and the two refusals that follow: CSRF for cookie changes, read-only viewers.

The cookie authenticates exactly as the key its session was made from (`Authenticator.
session_owner`): the console uses the same routes and the same rules as the SDK, no back door.
A header key wins over a cookie, and header-key requests never need a CSRF token (a browser
cannot be made to send a key header cross-site). A change (any method but GET, HEAD, OPTIONS)
authenticated by the cookie must carry `X-CSRF-Token` equal, compared in constant time, to its
session's token, and must not come from another site (`Sec-Fetch-Site: cross-site`, or an
`Origin` whose host is not this server's `Host`): else 403 CSRF_FAILED. A viewer's change, by
key or cookie, is 403 FORBIDDEN on every route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request

from errand.api.auth import Authenticator, Owner
from errand.console_models import ConsoleSession
from errand.errors import CsrfFailed, Forbidden, Unauthorized
from errand.store.base import Store

COOKIE = "errand_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_METHODS = frozenset({"GET", "HEAD"})


def session_hash(cookie: str) -> str:
    """What the store keeps of a session id: its SHA-256, so a database copy signs nobody in."""
    return hashlib.sha256(cookie.encode("utf-8", "surrogateescape")).hexdigest()


async def authenticate(request: Request, auth: Authenticator, store: Callable[[], Store]) -> Owner:
    """The Owner of a request: by its key header, else by its session cookie (then CSRF-checked
    for a change); a viewer asking a change is refused here, for every route at once."""
    cookie = request.cookies.get(COOKIE)
    if auth.has_key(request.headers) or cookie is None:
        owner = auth.authenticate(request.headers)
    else:
        session = await live_session(store(), cookie)
        if request.method not in SAFE_METHODS:
            check_csrf(request, session)
        owner = auth.session_owner(session.key_id, session.role, request.headers)
    if owner.read_only and request.method not in READ_METHODS:
        raise Forbidden("A viewer key is read-only: this needs an admin key")
    return owner


async def live_session(store: Store, cookie: str) -> ConsoleSession:
    """The session a cookie names; Unauthorized when it is unknown, signed out or expired."""
    session = await store.get_session(session_hash(cookie))
    if session is None:
        raise Unauthorized("The console session has expired or was signed out: sign in again")
    return session


def check_csrf(request: Request, session: ConsoleSession) -> None:
    """CsrfFailed unless the change is same-site and carries the session's token."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise CsrfFailed("A cross-site request cannot change anything with the console session")
    origin = request.headers.get("origin")
    if origin is not None and not same_host(origin, request.headers.get("host", "")):
        raise CsrfFailed("The request's Origin is not this server")
    token = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), session.csrf_token.encode()):
        raise CsrfFailed("A change made with the console session needs its X-CSRF-Token header")


def same_host(origin: str, host: str) -> bool:
    """Whether an Origin (`scheme://host[:port]`, or `null`) names the host the request was sent
    to. The scheme is not compared: behind a TLS proxy the server sees http, the browser https."""
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()

"""Who is calling: API keys -> Owner, and the ownership rule every read and cancel obeys.

Keys are never stored or logged: each configured key is kept as its SHA-256 digest, and a
request is owned by the key's short fingerprint (`key_id`). The presented key is hashed once
and compared with `hmac.compare_digest` against *every* configured digest, without stopping
at the first match, so timing reveals neither the key nor which key matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from errand.errors import Forbidden, InvalidRequest, NotFound, RequestExpired, Unauthorized
from errand.models import DEFAULT_USER_ID, Request
from errand.request_ids import is_request_id, lookup_ids, public_id
from errand.store.base import Store

DEFAULT_USER = DEFAULT_USER_ID
USER_ID_RE = re.compile(r"[A-Za-z0-9_.@+:=-]{1,128}")
"""End-user ids: printable, no spaces or slashes (they end up in logs, URLs and webhooks)."""

CLIENT_HEADER = "x-muxi-client-key"
ADMIN_HEADER = "x-muxi-admin-key"
USER_HEADER = "x-muxi-user-id"


@dataclass(frozen=True, slots=True)
class Owner:
    """The caller: key fingerprint, end user, admin or not.

    `user_given` says whether the user id came from the request (an admin lists everything
    unless it names a user). A viewer key reads as an admin (`is_admin`) and is `read_only`:
    `context.endpoint` refuses it every method but GET and HEAD."""

    key_id: str
    user_id: str
    is_admin: bool
    user_given: bool = True
    read_only: bool = False

    @property
    def role(self) -> str:
        return "viewer" if self.read_only else "admin" if self.is_admin else "client"


def key_id(key: str) -> str:
    """Short public fingerprint of a key: what requests are stored under instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class _Key:
    digest: bytes
    key_id: str
    is_admin: bool
    read_only: bool = False

    @property
    def role(self) -> str:
        return "viewer" if self.read_only else "admin" if self.is_admin else "client"


class Authenticator:
    """Turns request headers into an Owner; built once per app (the lookup table is cached).

    Viewer keys are presented like client keys (`X-Muxi-Client-Key` or `Authorization:
    Bearer`); `X-Muxi-Admin-Key` takes admin keys only."""

    def __init__(
        self, client_keys: Iterable[str], admin_keys: Iterable[str], viewer_keys: Iterable[str] = ()
    ) -> None:
        admin = [_entry(k, True) for k in admin_keys]
        viewer = [_entry(k, True, read_only=True) for k in viewer_keys]
        self._admin = tuple(admin)
        self._any = (*(_entry(k, False) for k in client_keys), *admin, *viewer)
        self._roles = {e.key_id: e.role for e in self._any}

    def find_key(self, presented: str) -> tuple[str, str] | None:
        """(key_id, role) of a presented key of any kind, compared in constant time; None if unknown."""
        entry = _match(presented, self._any)
        return None if entry is None else (entry.key_id, entry.role)

    def session_owner(self, key_id: str, role: str, headers: Mapping[str, str]) -> Owner:
        """The Owner of a console session made from key `key_id`: exactly that key's, while the
        key is still configured with that role (a key removed from the formation ends its
        sessions at the next restart); else Unauthorized."""
        if self._roles.get(key_id) != role or role not in ("admin", "viewer"):
            raise Unauthorized("The console session's key is no longer valid: sign in again")
        user = headers.get(USER_HEADER)
        read_only = role == "viewer"
        if user is None:
            return Owner(key_id, DEFAULT_USER, True, False, read_only)
        return Owner(key_id, _valid_user(user, "X-Muxi-User-Id"), True, True, read_only)

    def authenticate(self, headers: Mapping[str, str]) -> Owner:
        """Owner for these headers, or Unauthorized.

        `X-Muxi-Admin-Key` is checked against admin keys only; `X-Muxi-Client-Key` and
        `Authorization: Bearer` against every key (an admin key there still means admin).
        A wrong admin header is a 401 even when a client key is also present: no silent
        downgrade.
        """
        admin_key = headers.get(ADMIN_HEADER)
        if admin_key is not None:
            entry = _match(admin_key, self._admin)
            if entry is None:
                raise Unauthorized("Invalid admin API key")
        else:
            presented = headers.get(CLIENT_HEADER) or _bearer(headers.get("authorization"))
            if not presented:
                raise Unauthorized(
                    "A valid API key is required: send the X-Muxi-Client-Key header "
                    "(or Authorization: Bearer <key>)"
                )
            entry = _match(presented, self._any)
            if entry is None:
                raise Unauthorized("Invalid API key")
        user = headers.get(USER_HEADER)
        if user is None:
            return Owner(entry.key_id, DEFAULT_USER, entry.is_admin, False, entry.read_only)
        return Owner(entry.key_id, _valid_user(user, "X-Muxi-User-Id"), entry.is_admin, True, entry.read_only)

    def has_key(self, headers: Mapping[str, str]) -> bool:
        """Whether the request presents a key at all (a key wins over a session cookie)."""
        return (
            headers.get(ADMIN_HEADER) is not None
            or bool(headers.get(CLIENT_HEADER))
            or _bearer(headers.get("authorization")) is not None
        )


def with_body_user(owner: Owner, body_user: str | None) -> Owner:
    """MUXI's deprecated body `user_id`: used only when no X-Muxi-User-Id header was sent."""
    if owner.user_given or body_user is None:
        return owner
    return Owner(owner.key_id, _valid_user(body_user, "user_id"), owner.is_admin, True, owner.read_only)


def owns(owner: Owner, req_owner: str | None, req_user: str | None) -> bool:
    """A client sees only its own (key, user) requests; others look unknown (404, not 403)."""
    return owner.is_admin or (req_owner, req_user) == (owner.key_id, owner.user_id)


async def get_owned(store: Store, owner: Owner, request_id: str) -> Request:
    """The caller's request named by a path id: as written (a generated or a stored id), else
    the caller's own client-chosen id (request_ids.lookup_ids). Another's, live or purged,
    answers 404 like an unknown id (a 410 for someone else's tombstone would tell that the id
    exists); so does text that is no id at all, before any lookup (both backends alike)."""
    if not is_request_id(request_id):
        raise NotFound("Request not found")
    for stored in lookup_ids(request_id, owner.key_id, owner.user_id):
        try:
            req = await store.get(stored)
        except NotFound:
            continue
        except RequestExpired as exc:
            if owns(owner, exc.owner, exc.user_id):
                raise
            continue
        if owns(owner, req.owner, req.user_id):
            return req
    hint = " (an admin names a client-chosen id as GET /v1/requests shows it: <id>~<scope>)"
    raise NotFound(f"Request {public_id(request_id)} not found{hint if owner.is_admin else ''}")


def shown_id(owner: Owner, stored: str) -> str:
    """The request id a caller is shown: its own public id; for an admin, the stored one."""
    return stored if owner.is_admin else public_id(stored)


def require_full_admin(owner: Owner) -> None:
    """Admin-only reads a viewer may not see either (the webhook signing secret): a viewer gets
    403 FORBIDDEN, any other non-admin key 401 as require_admin says."""
    require_admin(owner)
    if owner.read_only:
        raise Forbidden("A viewer key cannot read this: it needs the admin key")


def require_admin(owner: Owner) -> None:
    """Admin-only endpoints (redeliver): another valid key gets 401, not 403 -- the admin key is
    the credential that is missing, and the error table has no 403. It is checked before the
    request is looked up, so the answer says nothing about whether the request exists."""
    if not owner.is_admin:
        raise Unauthorized("This endpoint needs the admin key: send it as X-Muxi-Admin-Key")


def list_filter(owner: Owner) -> tuple[str | None, str | None]:
    """(owner, user_id) filters for listing: a client its own; an admin all, or one named user."""
    if owner.is_admin:
        return None, owner.user_id if owner.user_given else None
    return owner.key_id, owner.user_id


def _entry(key: str, is_admin: bool, *, read_only: bool = False) -> _Key:
    return _Key(hashlib.sha256(key.encode()).digest(), key_id(key), is_admin, read_only)


def _match(presented: str, table: tuple[_Key, ...]) -> _Key | None:
    digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
    found: _Key | None = None
    for entry in table:  # no early exit: every key is compared, whatever matches
        if hmac.compare_digest(digest, entry.digest) and found is None:
            found = entry
    return found


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _valid_user(value: str, field: str) -> str:
    if not USER_ID_RE.fullmatch(value):
        raise InvalidRequest(
            f"{field} must be 1-128 characters of letters, digits and _ . @ + : = -",
            details={"field": field},
        )
    return value

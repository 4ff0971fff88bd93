"""Fixed parts of the OpenAPI document: the parameters routes share, the security schemes (keys
and the console session cookie) and the shape of one Server-Sent Event. Split from
api/openapi.py to keep it short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from errand.api.auth import USER_ID_RE
from errand.api.request_filters import KINDS
from errand.api.submit import IDEMPOTENCY_KEY_RE
from errand.models import Status

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "client": [{"ClientKey": []}, {"AdminKey": []}, {"Bearer": []}, {"SessionCookie": []}],
    "admin": [{"AdminKey": []}, {"Bearer": []}, {"SessionCookie": []}],
    "none": [],
}
SECURITY_SCHEMES: dict[str, Any] = {
    "ClientKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Muxi-Client-Key",
        "description": "A client key.",
    },
    "AdminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Muxi-Admin-Key",
        "description": "An admin key: sees every owner's requests; needed for redeliver and the secret.",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "Any client, admin or viewer key as a bearer token (a viewer key also works "
        "as X-Muxi-Client-Key: it reads what an admin reads, and any other method is 403 FORBIDDEN).",
    },
    "SessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "errand_session",
        "description": "The console session (POST /ui/session): authenticates as the key it was made "
        "from. Any method but GET/HEAD/OPTIONS also needs X-CSRF-Token and a same-site origin, "
        "else 403 CSRF_FAILED.",
    },
}
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event: `id` is its gapless sequence number (send it back as "
    "Last-Event-ID to resume), `event` its type (created, started, progress, content, retry, "
    "routed, input_required, input_received, completed, failed, cancelled), `data` its JSON; "
    "the terminal event's data is the status document, and the stream ends after it.",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["data"],
}


@dataclass(frozen=True)
class Query:
    """A query (or header, with `where="header"`) parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    where: Literal["query", "header"] = "query"


IDEMPOTENCY = Query(
    "X-Muxi-Idempotency-Key",
    {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY_RE.pattern}$"},
    "A retry with the same key, owner and path returns the original request (kept 24 h).",
    "header",
)
WAIT = Query("wait", {"type": "number", "minimum": 0}, "Long-poll up to this many seconds (max 60).")
LIST = (
    Query("status", {"type": "string", "enum": [s.value for s in Status]}),
    Query("agent", {"type": "string", "maxLength": 200}, "Only this agent's requests."),
    Query("kind", {"type": "string", "enum": list(KINDS)}),
    Query(
        "user_id",
        {"type": "string", "pattern": f"^{USER_ID_RE.pattern}$"},
        "Admin and viewer keys: one user's.",
    ),
    Query("since", {"type": "number", "minimum": 0}, "Created at or after (epoch seconds)."),
    Query("until", {"type": "number", "minimum": 0}, "Created before (epoch seconds)."),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50)."),
    Query("cursor", {"type": "string", "maxLength": 512}, "`next_cursor` of the previous page."),
)
ADMIN_DELIVERIES = (
    Query(
        "state", {"type": "string", "enum": ["pending", "delivered", "failed"]}, "pending includes retrying."
    ),
    *LIST[-2:],  # limit, cursor
)
CSRF = Query(
    "X-CSRF-Token", {"type": "string"}, "The session's csrf_token (changes made with the cookie).", "header"
)
LAST_EVENT = (
    Query("Last-Event-ID", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "Resume after this id.", "header"),
    Query("last_event_id", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "As Last-Event-ID."),
)
RESUME = (
    Query("stream", {"type": "string", "enum": ["true", "false"]}, "true: the events as Server-Sent Events."),
    Query("starting_after", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "Resume after this number."),
)
USER = Query(
    "X-Muxi-User-Id",
    {"type": "string", "pattern": f"^{USER_ID_RE.pattern}$", "default": "0"},
    "The end user; a request belongs to (key, user).",
    "header",
)

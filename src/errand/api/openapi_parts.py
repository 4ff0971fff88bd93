"""Fixed parts of the OpenAPI document: the security schemes (keys and the console session
cookie) and the shape of one Server-Sent Event. Split from api/openapi.py to keep it short."""

from __future__ import annotations

from typing import Any

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
    "routed, completed, failed, cancelled), `data` its JSON; the terminal event's data is the "
    "status document, and the stream ends after it.",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["data"],
}

"""The opaque list cursor shared by every backend: the (created_at, id) key of a page's last row."""

from __future__ import annotations

import base64
import binascii

import orjson

from errand.errors import InvalidRequest


def encode_cursor(created_at: float, request_id: str) -> str:
    """The opaque `next_cursor`: the (created_at, id) key of the last row of a page."""
    return base64.urlsafe_b64encode(orjson.dumps([created_at, request_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """InvalidRequest for anything `encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, request_id = orjson.loads(raw)
        if isinstance(created_at, int | float) and isinstance(request_id, str):
            return float(created_at), request_id
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise InvalidRequest("invalid cursor", details={"cursor": cursor})

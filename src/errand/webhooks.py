"""Webhook bodies and signatures: what errand sends, and how a receiver checks it (pure, public).

errand signs exactly the bytes it sends (MUXI signs a re-serialisation it never sends, so its
own SDK cannot verify its webhooks). Every delivery carries two signatures over those bytes:

* ``X-Muxi-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` with
  ``X-Muxi-Timestamp`` -- what MUXI receivers already check;
* the Standard Webhooks trio ``webhook-id`` (stable per delivery: dedupe on it),
  ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<t>." + body)>``,
  where ``key`` is the base64-decoded secret for a ``whsec_`` secret (as the spec says), else the
  secret's UTF-8 bytes. Any Standard Webhooks library verifies it.

A receiver needs only this module (stdlib only, no server dependencies)::

    from errand.webhooks import verify

    @app.post("/hooks/errand")
    async def hook(request):
        raw = await request.body()                      # the raw bytes, before any JSON parsing
        if not verify(raw, request.headers, SECRET):    # signature + 5-minute replay window
            return Response(status_code=401)
        event = json.loads(raw)
        if seen(request.headers["webhook-id"]):         # retries repeat the same id and bytes
            return Response(status_code=200)
        handle(event["request_id"], event["status"], event.get("result"))
        return Response(status_code=204)                # any 2xx stops the retries
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["build_body", "canonical_json", "sign", "verify"]

_WHSEC = "whsec_"
_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical_json(obj: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, raw UTF-8.

    Floats use Python's shortest round-trip repr, so `json.loads` then `canonical_json` gives
    the same bytes again (receivers that re-canonicalise, as MUXI's do, still match). NaN and
    infinities are refused: they are not JSON. A lone surrogate (only possible from Python
    code, never from decoded JSON) is written as a \\uXXXX escape so the bytes stay valid UTF-8.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def build_body(
    document: Mapping[str, Any], *, formation_id: str, timestamp_ms: int, webhook_url: str
) -> dict[str, Any]:
    """The webhook body: the status document plus MUXI's webhook fields.

    The status document is what GET /v1/requests/{id} answers, so a receiver can share code
    with a poller; the MUXI fields (`id`, `object`, `timestamp` in ms, `processing_time` in s,
    `response[]`, `error`) let MUXI receivers and `muxi.webhook.parse` read it unchanged.
    """
    status = document.get("status")
    result = document.get("result")
    duration_ms = document.get("duration_ms")
    response: list[dict[str, Any]] = []
    if status == "completed" and isinstance(result, Mapping):
        response = [{"type": "text", "text": str(result.get("text", ""))}]
    error: dict[str, Any] | None = None
    if status == "failed" and isinstance(document.get("error"), Mapping):
        error = dict(document["error"])  # models.error_document: `code` (MUXI's) is in it already
    return {
        **document,
        "id": document.get("request_id"),
        "object": "response",
        "timestamp": int(timestamp_ms),
        "formation_id": formation_id,
        "processing_time": duration_ms / 1000 if isinstance(duration_ms, int | float) else None,
        "processing_mode": "async",
        "webhook_url": webhook_url,
        "response": response,
        "error": error,
    }


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _standard_key(secret: str) -> bytes:
    """Standard Webhooks key: a `whsec_` secret is base64; any other secret is its UTF-8 bytes."""
    if secret.startswith(_WHSEC):
        encoded = secret[len(_WHSEC) :]
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    return secret.encode("utf-8")


def sign(body: bytes, secret: str, *, msg_id: str, timestamp: int) -> dict[str, str]:
    """The headers of one delivery attempt: both signature schemes over exactly `body`."""
    if not secret:
        raise ValueError("a webhook secret is required to sign")
    t = str(int(timestamp))
    muxi = _hmac(secret.encode("utf-8"), t.encode() + b"." + body).hex()
    standard = _hmac(_standard_key(secret), f"{msg_id}.{t}.".encode() + body)
    return {
        "Content-Type": "application/json",
        "X-Muxi-Signature": f"t={t},v1={muxi}",
        "X-Muxi-Timestamp": t,
        "webhook-id": msg_id,
        "webhook-timestamp": t,
        "webhook-signature": "v1," + base64.b64encode(standard).decode("ascii"),
    }


def _fresh(t: str, tolerance: float, now: float) -> bool:
    """A decimal timestamp within `tolerance` seconds of now, either way (replay window)."""
    return t.isdigit() and len(t) <= 12 and abs(now - int(t)) <= tolerance


def _verify_muxi(raw_body: bytes, header: str, secret: str, tolerance: float, now: float) -> bool:
    """`t=<t>,v1=<hex>[,v1=<hex>...]`: any v1 matching HMAC(secret, "<t>." + body)."""
    t: str | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            t = value
        elif key == "v1":
            candidates.append(value)
    if t is None or not _fresh(t, tolerance, now):
        return False
    expected = _hmac(secret.encode("utf-8"), t.encode() + b"." + raw_body).hex().encode()
    return any(hmac.compare_digest(expected, c.lower().encode("utf-8")) for c in candidates)


def _verify_standard(
    raw_body: bytes, h: Mapping[str, str], secret: str, tolerance: float, now: float
) -> bool:
    """Standard Webhooks: any space-separated `v1,<base64>` matching HMAC(key, "<id>.<t>." + body)."""
    msg_id, t, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not t or not sigs or not _fresh(t, tolerance, now):
        return False
    try:
        key = _standard_key(secret)
    except (binascii.Error, ValueError):
        return False
    expected = _hmac(key, f"{msg_id}.{t}.".encode() + raw_body)
    for versioned in sigs.split():
        version, _, encoded = versioned.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return True
    return False


def verify(
    raw_body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """True when either signature form in `headers` matches `raw_body` and is fresh.

    Pass the raw bytes as received (never a re-serialised body). Header names are matched
    case-insensitively. The timestamp must be within `tolerance` seconds of `now` (default: the
    current time), which bounds replays; dedupe on `webhook-id` for full replay safety.
    Missing or malformed headers, or an empty secret, give False -- never an exception.
    """
    if not secret or not isinstance(raw_body, bytes | bytearray):
        return False
    try:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    except (AttributeError, TypeError):
        return False
    current = time.time() if now is None else now
    muxi = lowered.get("x-muxi-signature")
    if muxi and _verify_muxi(bytes(raw_body), muxi, secret, tolerance, current):
        return True
    return _verify_standard(bytes(raw_body), lowered, secret, tolerance, current)

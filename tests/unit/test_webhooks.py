"""errand.webhooks: canonical bytes, both signature schemes, and verification by third parties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from errand.models import ErrorInfo, error_document
from errand.webhooks import build_body, canonical_json, sign, verify

SECRET = "s3cret-webhook-key"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = 1_800_000_000

DOC: dict[str, Any] = {
    "request_id": "req_abc",
    "status": "completed",
    "user_id": "u1",
    "kind": "chat",
    "agent": "researcher",
    "progress": None,
    "attempts": 1,
    "created_at": 1785843812.44,
    "started_at": 1785843812.45,
    "completed_at": 1785843861.09,
    "duration_ms": 48640,
    "delivery": "webhook",
    "result": {"text": "Café ☕ done", "agent": "researcher"},
}


def body_bytes(doc: dict[str, Any] = DOC) -> bytes:
    return canonical_json(
        build_body(doc, formation_id="lab", timestamp_ms=1785843861090, webhook_url="https://h.example/x")
    )


def test_canonical_json_is_sorted_compact_raw_utf8_and_stable() -> None:
    raw = canonical_json({"b": 1.5, "a": {"z": [1, 2.0, None, True]}, "é": "Café ☕"})
    assert raw == '{"a":{"z":[1,2.0,null,true]},"b":1.5,"é":"Café ☕"}'.encode()
    assert "Café ☕".encode() in raw  # not \\u escaped
    again = canonical_json(json.loads(raw))
    assert again == raw  # a re-canonicalising receiver gets the same bytes
    assert canonical_json({"t": 1785843812.44}) == b'{"t":1785843812.44}'


def test_canonical_json_refuses_nan_and_keeps_lone_surrogates_valid_utf8() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    raw = canonical_json({"x": "a\ud800b"})
    raw.decode("utf-8")  # valid UTF-8
    assert json.loads(raw) == {"x": "a\ud800b"}


def test_build_body_has_status_document_and_muxi_fields() -> None:
    body = build_body(DOC, formation_id="lab", timestamp_ms=1785843861090, webhook_url="https://h.example/x")
    assert {k: body[k] for k in DOC} == DOC  # the status document, unchanged
    assert body["id"] == "req_abc"
    assert body["object"] == "response"
    assert body["timestamp"] == 1785843861090
    assert body["formation_id"] == "lab"
    assert body["processing_time"] == pytest.approx(48.64)
    assert body["processing_mode"] == "async"
    assert body["webhook_url"] == "https://h.example/x"
    assert body["response"] == [{"type": "text", "text": "Café ☕ done"}]
    assert body["error"] is None


def test_build_body_for_failed_and_cancelled() -> None:
    failed = {
        **{k: v for k, v in DOC.items() if k != "result"},
        "status": "failed",
        "error": error_document(ErrorInfo("TaskTimeout", "Task exceeded timeout (5s)")),
    }
    body = build_body(failed, formation_id="lab", timestamp_ms=1, webhook_url="https://h.example/x")
    assert body["response"] == []
    assert body["error"] == failed["error"]  # the one shape GET answers: code, type, message, retryable
    assert body["error"] == {
        "code": "processing_failed",
        "type": "TaskTimeout",
        "message": "Task exceeded timeout (5s)",
        "retryable": False,
    }
    cancelled = {**failed, "status": "cancelled", "duration_ms": None}
    cancelled.pop("error")
    body = build_body(cancelled, formation_id="lab", timestamp_ms=1, webhook_url="https://h.example/x")
    assert body["response"] == [] and body["error"] is None and body["processing_time"] is None


def test_sign_headers_shape() -> None:
    headers = sign(b"{}", SECRET, msg_id="dlv_1", timestamp=NOW)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Muxi-Timestamp"] == str(NOW)
    assert headers["webhook-id"] == "dlv_1"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["X-Muxi-Signature"].startswith(f"t={NOW},v1=")
    assert headers["webhook-signature"].startswith("v1,")


def test_muxi_signature_is_plain_hmac_over_the_raw_body() -> None:
    raw = body_bytes()
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + raw, hashlib.sha256).hexdigest()
    assert headers["X-Muxi-Signature"] == f"t={NOW},v1={expected}"
    std = hmac.new(SECRET.encode(), f"dlv_1.{NOW}.".encode() + raw, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(std).decode()


@pytest.mark.parametrize("form", ["muxi", "standard", "both"])
def test_round_trip_each_header_form(form: str) -> None:
    raw = body_bytes()
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    keep = {
        "muxi": {"X-Muxi-Signature", "X-Muxi-Timestamp"},
        "standard": {"webhook-id", "webhook-timestamp", "webhook-signature"},
        "both": set(headers),
    }[form]
    subset = {k: v for k, v in headers.items() if k in keep}
    assert verify(raw, subset, SECRET, now=NOW + 10)
    upper = {k.upper(): v for k, v in subset.items()}
    assert verify(raw, upper, SECRET, now=NOW + 10)  # header names are case-insensitive


@pytest.mark.parametrize("form", ["muxi", "standard"])
def test_rejections(form: str) -> None:
    raw = body_bytes()
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    if form == "muxi":
        headers = {k: v for k, v in headers.items() if k.startswith("X-Muxi")}
    else:
        headers = {k: v for k, v in headers.items() if k.startswith("webhook-")}
    assert verify(raw, headers, SECRET, now=NOW)
    assert not verify(raw.replace(b"done", b"DONE"), headers, SECRET, now=NOW)  # tampered body
    assert not verify(raw, headers, "another-secret", now=NOW)  # wrong secret
    assert not verify(raw, headers, SECRET, now=NOW + 301)  # too old (replay)
    assert not verify(raw, headers, SECRET, now=NOW - 301)  # from the future
    assert verify(raw, headers, SECRET, now=NOW + 3000, tolerance=3600)
    assert not verify(raw, headers, "", now=NOW)


def test_tampered_timestamp_is_rejected() -> None:
    raw = body_bytes()
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    forged = dict(
        headers, **{"X-Muxi-Signature": headers["X-Muxi-Signature"].replace(f"t={NOW}", f"t={NOW + 1}")}
    )
    forged.pop("webhook-signature")
    assert not verify(raw, forged, SECRET, now=NOW)
    std = {k: v for k, v in headers.items() if k.startswith("webhook-")}
    std["webhook-timestamp"] = str(NOW + 1)
    assert not verify(raw, std, SECRET, now=NOW)
    std = {k: v for k, v in headers.items() if k.startswith("webhook-")}
    std["webhook-id"] = "dlv_2"
    assert not verify(raw, std, SECRET, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Muxi-Signature": "garbage"},
        {"X-Muxi-Signature": "t=abc,v1=00"},
        {"X-Muxi-Signature": "t=1800000000"},
        {"X-Muxi-Signature": "t=1800000000,v1=☕"},
        {"webhook-id": "x", "webhook-timestamp": "1800000000", "webhook-signature": "v1,@@@not-base64"},
        {"webhook-id": "x", "webhook-timestamp": "1800000000", "webhook-signature": "nocomma"},
        {"webhook-id": "x", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        {"webhook-timestamp": "1800000000", "webhook-signature": "v1,AAAA"},
    ],
)
def test_malformed_headers_give_false_not_exceptions(headers: dict[str, str]) -> None:
    assert verify(b"{}", headers, SECRET, now=NOW) is False


def test_multiple_signatures_any_match_verifies() -> None:
    raw = body_bytes()
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    std = {k: v for k, v in headers.items() if k.startswith("webhook-")}
    std["webhook-signature"] = "v1,AAAA v2,whatever " + std["webhook-signature"]
    assert verify(raw, std, SECRET, now=NOW)
    hexsig = headers["X-Muxi-Signature"].split("v1=")[1]
    muxi = {"X-Muxi-Signature": f"t={NOW},v1={'0' * 64},v1={hexsig}"}
    assert verify(raw, muxi, SECRET, now=NOW)
    std["webhook-signature"] = "v1,AAAA v1,BBBB"
    assert not verify(raw, std, SECRET, now=NOW)


def test_whsec_secret_uses_the_decoded_key_for_standard_webhooks() -> None:
    raw = body_bytes()
    headers = sign(raw, WHSEC, msg_id="dlv_1", timestamp=NOW)
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    std = hmac.new(key, f"dlv_1.{NOW}.".encode() + raw, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(std).decode()
    # The MUXI form keeps the secret string as the key (what MUXI receivers do).
    muxi = hmac.new(WHSEC.encode(), f"{NOW}.".encode() + raw, hashlib.sha256).hexdigest()
    assert headers["X-Muxi-Signature"].endswith(muxi)
    assert verify(raw, headers, WHSEC, now=NOW)


def test_invalid_whsec_secret_cannot_sign_and_does_not_verify() -> None:
    with pytest.raises(ValueError):
        sign(b"{}", "whsec_!!!", msg_id="x", timestamp=NOW)
    headers = sign(b"{}", SECRET, msg_id="x", timestamp=NOW)
    std = {k: v for k, v in headers.items() if k.startswith("webhook-")}
    assert verify(b"{}", std, "whsec_!!!", now=NOW) is False


@pytest.mark.parametrize("secret", [SECRET, WHSEC])
def test_standardwebhooks_library_verifies_our_bytes_and_headers(secret: str) -> None:
    raw = body_bytes()
    now = int(time.time())  # the library checks against the real clock
    headers = sign(raw, secret, msg_id="dlv_42", timestamp=now)
    # A non-whsec secret is used as raw UTF-8 bytes, which the library takes as bytes.
    wh = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    parsed = wh.verify(raw, headers)
    assert parsed["request_id"] == "req_abc"
    assert parsed["response"][0]["text"] == "Café ☕ done"
    with pytest.raises(WebhookVerificationError):
        wh.verify(raw + b" ", headers)


def test_non_ascii_stays_utf8_in_signed_bytes() -> None:
    raw = body_bytes()
    assert "Café ☕".encode() in raw
    assert b"\\u" not in raw
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    # MUXI's pitfall: an ASCII-escaped re-serialisation would not verify.
    escaped = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert escaped != raw
    assert not verify(escaped, headers, SECRET, now=NOW)
    assert verify(raw, headers, SECRET, now=NOW)


def test_verify_accepts_bytearray_and_rejects_str_body() -> None:
    raw = body_bytes()
    headers = sign(raw, SECRET, msg_id="dlv_1", timestamp=NOW)
    assert verify(bytearray(raw), headers, SECRET, now=NOW)  # type: ignore[arg-type]
    assert verify(raw.decode(), headers, SECRET, now=NOW) is False  # type: ignore[arg-type]

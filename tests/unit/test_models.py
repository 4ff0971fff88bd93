"""errand.models.to_document: the `delivery` field, a mode string when stored, an object when served."""

from __future__ import annotations

from errand.client import RequestHandle, RequestStatus
from errand.models import Delivery, DeliveryAttempt, Request, Status, to_document
from tests.support.models import stored_request


def _request(webhook_url: str | None, status: Status = Status.COMPLETED) -> Request:
    return stored_request(webhook_url=webhook_url, status=status)


def _delivery(state: str, codes: list[int | None], next_at: float | None) -> Delivery:
    attempts = [DeliveryAttempt("dlv_1", i + 1, 10.0 + i, c, None, 5) for i, c in enumerate(codes)]
    return Delivery("dlv_1", "req_1", "https://h.example/x", state, attempts, next_at, 3.0)


def test_stored_documents_keep_the_mode_string() -> None:
    # terminal events and webhook bodies are frozen when the request ends: no stale state in them
    assert to_document(_request(None))["delivery"] == "polling"
    assert to_document(_request("https://h.example/x"))["delivery"] == "webhook"


def test_served_documents_carry_the_delivery_state() -> None:
    assert to_document(_request(None), with_delivery=True)["delivery"] == {"mode": "polling"}
    before_end = to_document(_request("https://h.example/x", Status.PROCESSING), with_delivery=True)
    assert before_end["delivery"] == {
        "mode": "webhook",
        "state": "pending",
        "attempts": 0,
        "last_status_code": None,
        "next_attempt_at": None,
    }
    retrying = _delivery("retrying", [500, None], 99.5)
    doc = to_document(_request("https://h.example/x"), with_delivery=True, delivery=retrying)
    assert doc["delivery"] == {
        "mode": "webhook",
        "state": "retrying",
        "attempts": 2,
        "last_status_code": None,  # the last attempt got no answer (timeout, refused)
        "next_attempt_at": 99.5,
    }


def test_the_sdk_reads_both_forms_as_the_mode() -> None:
    served = to_document(
        _request("https://h.example/x"), with_delivery=True, delivery=_delivery("delivered", [200], None)
    )
    st = RequestStatus.from_document(served)
    assert st.delivery == "webhook" and st.raw["delivery"]["state"] == "delivered"
    assert RequestStatus.from_document(to_document(_request(None))).delivery == "polling"
    assert RequestHandle.from_document({"request_id": "r", "delivery": "webhook"}).delivery == "webhook"

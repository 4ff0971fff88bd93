"""errand.models.to_document: a completed request reads 100 %; a failed one's error has one shape."""

from __future__ import annotations

import pytest

from errand.models import ErrorInfo, Progress, Status, error_document, to_document
from errand.webhooks import build_body
from tests.support.models import stored_request

STUCK = Progress(80.0, "Writing the brief", 4, 5)


def test_a_completed_request_reads_100_percent_whatever_was_last_reported() -> None:
    doc = to_document(stored_request(status=Status.COMPLETED, progress=STUCK))
    assert doc["progress"] == {"percent": 100.0, "message": "Writing the brief", "step": 5, "total_steps": 5}
    no_total = to_document(stored_request(progress=Progress(80.0, "half", 2, None)))
    assert no_total["progress"] == {"percent": 100.0, "message": "half", "step": 2, "total_steps": None}


@pytest.mark.parametrize("status", [Status.PROCESSING, Status.FAILED, Status.CANCELLED])
def test_other_states_read_the_last_report(status: Status) -> None:
    doc = to_document(stored_request(status=status, progress=STUCK, completed_at=None))
    assert doc["progress"] == STUCK.to_dict()


def test_no_report_stays_null() -> None:
    assert to_document(stored_request(progress=None))["progress"] is None


def test_a_failed_request_carries_error_code_in_get_and_in_its_webhook_body() -> None:
    error = ErrorInfo("TaskTimeout", "Task exceeded timeout (5s)", retryable=True)
    doc = to_document(stored_request(status=Status.FAILED, error=error))
    expected = {"code": "processing_failed", "type": "TaskTimeout", "message": "Task exceeded timeout (5s)"}
    assert doc["error"] == {**expected, "retryable": True} == error_document(error)
    body = build_body(doc, formation_id="f", timestamp_ms=1, webhook_url="https://h.example/x")
    assert body["error"] == doc["error"]

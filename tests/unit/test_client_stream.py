"""The SDK's stream plan (resume id, reconnect budget) and the values of cancel, deliveries and
agents: the no-I/O half of `events()`, `cancel()`, `deliveries()`, `redeliver()`, `agents()`."""

from __future__ import annotations

import random

import pytest
from httpx_sse import ServerSentEvent

from errand import errors
from errand.backoff import Backoff
from errand.client import AgentInfo, CancelResult, DeliveryInfo
from errand.client.stream import RECONNECT_BACKOFF, StreamEvent, StreamPlan
from errand.models import Status

NO_JITTER = Backoff(initial=0.25, maximum=5.0, jitter=0.0)


def _sse(seq: int, event: str = "progress", data: str = '{"percent": 10.0}') -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=str(seq))


class TestStreamPlan:
    def test_headers_carry_the_last_id_seen(self) -> None:
        plan = StreamPlan("req_1", None, 3, NO_JITTER)
        assert "Last-Event-ID" not in plan.headers() and plan.headers()["Accept"] == "text/event-stream"
        plan.accept(_sse(1, "created", "{}"))
        plan.accept(_sse(2))
        assert plan.headers()["Last-Event-ID"] == "2"
        assert StreamPlan("req_1", 7, 3, NO_JITTER).headers()["Last-Event-ID"] == "7"

    def test_events_already_seen_and_comments_are_not_handed_out(self) -> None:
        plan = StreamPlan("req_1", 2, 3, NO_JITTER)
        assert plan.accept(_sse(2)) is None
        assert plan.accept(ServerSentEvent(event="message", data="", id="")) is None
        event = plan.accept(_sse(3))
        assert event == StreamEvent(3, "progress", {"percent": 10.0}) and not event.is_terminal

    def test_the_terminal_event_finishes_the_stream(self) -> None:
        plan = StreamPlan("req_1", None, 3, NO_JITTER)
        plan.accept(_sse(1, "created", "{}"))
        assert not plan.finished(None)
        done = plan.accept(_sse(2, "completed", '{"status": "completed"}'))
        assert done is not None and done.is_terminal and plan.finished(None)

    def test_without_follow_a_clean_end_is_the_end_but_a_drop_is_not(self) -> None:
        plan = StreamPlan("req_1", None, 3, NO_JITTER, follow=False)
        assert plan.finished(None)
        assert not plan.finished(errors.ServiceUnavailable("reset"))

    def test_a_clean_end_without_the_terminal_event_is_checked_then_replayed(self) -> None:
        plan = StreamPlan("req_1", 9, 3, NO_JITTER)
        assert plan.needs_check(None) and not plan.needs_check(errors.ServiceUnavailable("cut"))
        plan.ended()  # the request had ended: the rest comes as a replay, whose clean end is the end
        assert "follow" not in plan.headers() and plan.finished(None) and not plan.needs_check(None)

    def test_reconnects_back_off_and_are_bounded_by_drops_in_a_row(self) -> None:
        plan = StreamPlan("req_1", None, 2, NO_JITTER)
        assert [plan.dropped(None), plan.dropped(None)] == [0.25, 0.5]
        plan.accept(_sse(1, "created", "{}"))  # news resets the count
        assert plan.dropped(errors.ServiceUnavailable("reset")) == 0.25
        plan.dropped(None)
        with pytest.raises(errors.ServiceUnavailable, match=r"dropped 3 times in a row \(last event id 1\)"):
            plan.dropped(errors.ServiceUnavailable("refused"))

    def test_an_error_answer_other_than_503_ends_at_once(self) -> None:
        plan = StreamPlan("req_1", None, 5, NO_JITTER)
        with pytest.raises(errors.NotFound):
            plan.dropped(errors.NotFound("Request not found"))
        assert plan.drops == 0

    def test_the_default_backoff_is_the_one_module_jittered(self) -> None:
        assert isinstance(RECONNECT_BACKOFF, Backoff)
        delays = [RECONNECT_BACKOFF.delay(n, random.Random(1)) for n in (1, 2, 10)]
        assert 0.18 <= delays[0] <= 0.32 and 0.37 <= delays[1] <= 0.63 and delays[2] <= 6.25

    def test_negative_reconnects_are_a_programming_error(self) -> None:
        with pytest.raises(ValueError):
            StreamPlan("req_1", None, -1, NO_JITTER)


class TestValues:
    def test_cancel_result(self) -> None:
        doc = {"request_id": "req_1", "status": "cancelled", "cancellation": "cooperative"}
        got = CancelResult.from_document(doc)
        assert (got.request_id, got.status, got.cancellation) == ("req_1", Status.CANCELLED, "cooperative")
        assert dict(got.raw) == doc

    def test_deliveries(self) -> None:
        doc = {
            "request_id": "req_1",
            "count": 1,
            "deliveries": [
                {
                    "webhook_id": "dlv_1",
                    "url": "https://h.example/x",
                    "state": "retrying",
                    "created_at": 10.0,
                    "next_attempt_at": 12.5,
                    "attempts": [
                        {"attempt": 1, "at": 11.0, "status_code": 500, "error": "HTTP 500", "duration_ms": 3}
                    ],
                }
            ],
        }
        (one,) = DeliveryInfo.many(doc)
        assert (one.webhook_id, one.state, one.next_attempt_at) == ("dlv_1", "retrying", 12.5)
        assert one.attempts[0].status_code == 500 and one.attempts[0].error == "HTTP 500"
        assert DeliveryInfo.many({"deliveries": []}) == ()

    def test_agents(self) -> None:
        doc = {
            "agents": [
                {
                    "id": "a",
                    "description": "d",
                    "default": True,
                    "kind": "llm",
                    "tools": ["m:f"],
                    "expected_seconds": 2,
                },
                {"id": "b", "description": None, "default": False, "kind": "handler", "tools": []},
            ]
        }
        a, b = AgentInfo.many(doc)
        assert (a.id, a.default, a.kind, a.tools, a.expected_seconds) == ("a", True, "llm", ("m:f",), 2.0)
        assert b.description is None and b.expected_seconds is None and not b.default

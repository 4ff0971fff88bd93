"""api/response_events.py: errand's event log -> OpenAI streaming events, numbered stably."""

from __future__ import annotations

from typing import Any

from errand.api.response_events import StreamMapper, encode
from errand.api.response_objects import KIND, Turn
from errand.models import Event, Request, Status
from tests.support.models import stored_request

REQ: Request = stored_request(
    kind=KIND, status=Status.PENDING, metadata=Turn("echo", True).to_metadata({}), completed_at=None
)


def log(*entries: tuple[str, dict[str, Any]]) -> list[Event]:
    return [Event(REQ.id, i + 1, kind, data, float(i)) for i, (kind, data) in enumerate(entries)]


def done(text: str, **result: Any) -> tuple[str, dict[str, Any]]:
    return ("completed", {"status": "completed", "result": {"text": text, "agent": "echo", **result}})


def mapped(events: list[Event]) -> list[dict[str, Any]]:
    mapper = StreamMapper(REQ)
    return [e for event in events for e in mapper.feed(event)]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


STREAMED = log(
    ("created", {"status": "pending"}),
    ("started", {"attempt": 1}),
    ("progress", {"percent": 10}),
    ("content", {"text": "Hel"}),
    ("content", {"text": "lo"}),
    done("Hello", usage={"input_tokens": 1, "output_tokens": 2}),
)


def test_a_streamed_answer_maps_to_openais_event_sequence() -> None:
    out = mapped(STREAMED)
    assert types(out) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in out] == list(range(10))
    assert out[0]["response"]["status"] == "queued" and out[1]["response"]["status"] == "in_progress"
    assert [e["delta"] for e in out if e["type"] == "response.output_text.delta"] == ["Hel", "lo"]
    assert out[6]["text"] == "Hello" and out[8]["item"]["content"][0]["text"] == "Hello"
    final = out[-1]["response"]
    assert final["status"] == "completed" and final["output_text"] == "Hello"
    assert final["usage"]["total_tokens"] == 3
    assert {e["item_id"] for e in out if "item_id" in e} == {"msg_1"}


def test_the_same_log_always_gives_the_same_events_so_a_resume_is_exact() -> None:
    whole = mapped(STREAMED)
    assert mapped(STREAMED) == whole
    for cut in range(len(STREAMED)):  # a client that saw the events of the first `cut` entries
        seen = mapped(STREAMED[:cut])
        after = seen[-1]["sequence_number"] if seen else -1
        rest = [e for e in whole if e["sequence_number"] > after]
        assert seen + rest == whole


def test_an_agent_that_streams_nothing_gets_its_result_as_one_delta() -> None:
    out = mapped(log(("created", {}), ("started", {}), done("all at once")))
    deltas = [e["delta"] for e in out if e["type"] == "response.output_text.delta"]
    assert deltas == ["all at once"] and out[-1]["response"]["output_text"] == "all at once"


def test_deltas_that_are_a_prefix_of_the_result_are_completed_by_one_more() -> None:
    out = mapped(log(("created", {}), ("content", {"text": "Hello"}), done("Hello, world")))
    assert [e["delta"] for e in out if e["type"] == "response.output_text.delta"] == ["Hello", ", world"]


def test_a_retry_does_not_start_progress_twice_and_other_events_map_to_nothing() -> None:
    out = mapped(
        log(
            ("created", {}),
            ("started", {}),
            ("retry", {"attempt": 1}),
            ("started", {}),
            ("routed", {"agent": "x"}),
            ("content", {"text": ""}),
            ("content", {"oops": 1}),
            done(""),
        )
    )
    assert types(out).count("response.in_progress") == 1
    assert "response.output_text.delta" not in types(out)
    assert out[-1]["type"] == "response.completed"


def deltas(out: list[dict[str, Any]]) -> list[str]:
    return [e["delta"] for e in out if e["type"] == "response.output_text.delta"]


def test_a_rerun_after_a_retry_or_takeover_repeats_none_of_the_text_already_sent() -> None:
    out = mapped(
        log(
            ("created", {}),
            ("started", {}),
            ("content", {"text": "w0 w1"}),
            ("retry", {"attempt": 1}),
            ("started", {}),
            ("content", {"text": "w0"}),
            ("content", {"text": " w1 w2"}),
            done("w0 w1 w2 w3"),
        )
    )
    assert deltas(out) == ["w0 w1", " w2", " w3"]
    assert "".join(deltas(out)) == out[-1]["response"]["output_text"]


def test_a_rerun_that_diverges_sends_no_more_deltas_and_done_has_the_result() -> None:
    out = mapped(
        log(
            ("created", {}),
            ("started", {}),
            ("content", {"text": "first try"}),
            ("started", {}),
            ("content", {"text": "second"}),
            done("second try"),
        )
    )
    assert deltas(out) == ["first try"]
    assert [e["text"] for e in out if e["type"] == "response.output_text.done"] == ["second try"]


def test_a_cancel_mid_stream_closes_the_item_as_incomplete() -> None:
    out = mapped(log(("created", {}), ("content", {"text": "par"}), ("cancelled", {"status": "cancelled"})))
    assert types(out)[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.cancelled",
    ]
    assert out[-2]["item"]["status"] == "incomplete" and out[-2]["item"]["content"][0]["text"] == "par"
    assert out[-1]["response"]["status"] == "cancelled"


def test_a_failure_carries_the_error_and_nothing_follows_the_end() -> None:
    failed = ("failed", {"status": "failed", "error": {"type": "AgentError", "message": "boom"}})
    mapper = StreamMapper(REQ)
    events = log(("created", {}), failed, ("content", {"text": "late"}))
    out = [e for event in events for e in mapper.feed(event)]
    assert types(out) == ["response.created", "response.failed"] and mapper.done
    assert out[-1]["response"]["error"] == {"code": "server_error", "message": "AgentError: boom"}


def test_encode_is_an_sse_message_naming_the_type() -> None:
    frame = encode({"type": "response.output_text.delta", "delta": "x", "sequence_number": 4})
    assert frame.startswith(b"event: response.output_text.delta\ndata: {") and frame.endswith(b"}\n\n")
    assert b'"sequence_number":4' in frame

"""Traces over real HTTP, recorded by the OpenTelemetry SDK's in-memory exporter.

A caller's `traceparent` on POST /v1/chat (and a trigger) is stored with the request; with
tracing on, `errand.submit` is the caller's child and the queue wait, the attempt, the model
and tool calls and each webhook attempt descend from it, in one trace; the webhook POST carries
its span's `traceparent`. With tracing off the caller's context is still stored as sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from errand import tracing
from tests.support.fake_openai import Call, FakeOpenAI, Text, ToolCalls
from tests.support.server import Server, wait_for
from tests.support.webhook_receiver import receiving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.shutdown()
    provider.shutdown()


def named(
    exporter: InMemorySpanExporter, name: str, count: int = 1, timeout: float = 10
) -> list[ReadableSpan]:
    """The finished spans called `name`, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in exporter.get_finished_spans() if s.name == name]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{name}: {[s.name for s in exporter.get_finished_spans()]}"
        time.sleep(0.02)


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def submit(srv: Server, headers: dict[str, str], **body: Any) -> str:
    r = srv.client().post("/v1/chat", json={"message": "hi", "mode": "async", **body}, headers=headers)
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def test_a_request_is_one_trace_under_the_callers_span(
    make_server: Callable[..., Server], spans: InMemorySpanExporter
) -> None:
    with receiving() as hook:
        srv = make_server()
        rid = submit(srv, {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}, webhook_url=hook.url)
        assert wait_for(srv.client(), rid)["status"] == "completed"
        [hit] = hook.wait_for(1)
        [sub] = named(spans, "errand.submit")
        [wait] = named(spans, "errand.queue_wait")
        [attempt] = named(spans, "errand.attempt")
        [webhook] = named(spans, "errand.webhook")

    assert sub.kind is SpanKind.SERVER and parent_id(sub) == CALLER_SPAN
    assert {trace_id(s) for s in (sub, wait, attempt, webhook)} == {TRACE_ID}
    assert parent_id(wait) == parent_id(attempt) == parent_id(webhook) == span_id(sub)
    assert attempt.attributes is not None and webhook.attributes is not None
    assert attempt.attributes["errand.outcome"] == "completed"
    assert attempt.attributes["errand.agent"] == "echo" and attempt.attributes["errand.attempt"] == 1
    assert webhook.kind is SpanKind.CLIENT and webhook.attributes["http.response.status_code"] == 200
    assert wait.start_time is not None and wait.end_time is not None and wait.end_time >= wait.start_time
    # the receiver sees the webhook attempt's span as its parent, in the caller's trace
    assert hit.headers["traceparent"] == f"00-{TRACE_ID}-{span_id(webhook)}-01"
    # stored: the submit span's context (what a worker in any process continues), tracestate kept
    stored = srv.run(srv.store.get(rid)).trace_context
    assert stored == {"traceparent": f"00-{TRACE_ID}-{span_id(sub)}-01", "tracestate": "vendor=1"}


def test_model_and_tool_calls_are_genai_spans_inside_the_attempt(
    make_server: Callable[..., Server], fake: FakeOpenAI, spans: InMemorySpanExporter
) -> None:
    model = {"provider": "openai", "name": "fake-model", "base_url": fake.base_url, "api_key": "sk-test"}
    agent = {"id": "llm", "model": model, "tools": ["tests.support.agents:add"], "default": True}
    srv = make_server(agents=[agent])
    fake.script(ToolCalls([Call("add", {"a": 2, "b": 3})], usage=(20, 8)), Text(["5"]))
    rid = submit(srv, {"traceparent": TRACEPARENT})
    assert wait_for(srv.client(), rid)["status"] == "completed"
    [attempt] = named(spans, "errand.attempt")
    chats = named(spans, "chat fake-model", 2)
    [tool] = named(spans, "execute_tool add")

    for chat in chats:
        assert chat.kind is SpanKind.CLIENT and parent_id(chat) == span_id(attempt)
        assert chat.attributes is not None and trace_id(chat) == TRACE_ID
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.system"] == "openai"
        assert chat.attributes["gen_ai.request.model"] == "fake-model"
        assert chat.attributes["server.address"] == "127.0.0.1"
    by_tokens = sorted((c.attributes or {}).get("gen_ai.usage.input_tokens", -1) for c in chats)
    assert by_tokens == [10, 20]  # each call's own usage, as the fake reported it
    assert {tuple((c.attributes or {})["gen_ai.response.finish_reasons"]) for c in chats} == {
        ("tool_calls",),
        ("stop",),
    }
    assert parent_id(tool) == span_id(attempt) and tool.attributes is not None
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert (
        tool.attributes["gen_ai.tool.name"] == "add" and tool.attributes["gen_ai.tool.call.id"] == "call_1_0"
    )


def test_a_failed_attempt_is_an_error_span(
    make_server: Callable[..., Server], spans: InMemorySpanExporter
) -> None:
    srv = make_server()
    rid = submit(srv, {}, agent_id="fail")
    doc = wait_for(srv.client(), rid)
    assert doc["status"] == "failed"
    [attempt] = named(spans, "errand.attempt")
    [sub] = named(spans, "errand.submit")
    assert sub.parent is None and trace_id(attempt) == trace_id(sub)  # no caller: errand's own trace
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.attributes is not None and attempt.attributes["errand.outcome"] == "failed"
    assert attempt.attributes["error.type"] == doc["error"]["type"]


def test_with_tracing_off_the_callers_context_is_stored_as_sent(server: Server) -> None:
    assert not tracing.active()
    rid = submit(server, {"traceparent": TRACEPARENT.upper(), "tracestate": "x" * 600})
    assert server.run(server.store.get(rid)).trace_context == {"traceparent": TRACEPARENT}
    # an invalid traceparent is ignored (W3C: start afresh), never an error
    for bad in ("00-" + "0" * 32 + f"-{CALLER_SPAN}-01", "ff-" + TRACE_ID + f"-{CALLER_SPAN}-01", "garbage"):
        rid = submit(server, {"traceparent": bad})
        assert server.run(server.store.get(rid)).trace_context is None
    rid = submit(server, {})
    assert server.run(server.store.get(rid)).trace_context is None


def test_a_trigger_keeps_the_callers_trace(make_server: Callable[..., Server], tmp_path: Path) -> None:
    folder = tmp_path / "formation"
    (folder / "triggers").mkdir(parents=True)
    (folder / "triggers" / "greet.md").write_text("Hello ${{ data.name }}\n", encoding="utf-8")
    srv = make_server(base_dir=str(folder))
    headers = {"traceparent": TRACEPARENT}
    r = srv.client().post("/v1/triggers/greet", json={"data": {"name": "x"}}, headers=headers)
    assert r.status_code == 202, r.text
    stored = srv.run(srv.store.get(r.json()["request_id"])).trace_context
    assert stored == {"traceparent": TRACEPARENT}

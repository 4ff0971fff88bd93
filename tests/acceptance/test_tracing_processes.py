"""One trace across processes: `errand serve --no-workers` and `errand worker` on one SQLite
file, each exporting over OTLP/HTTP (configured only by OTEL_* variables) to a small OTLP
receiver in the test. The API's `errand.submit` is the caller's child; the worker process
continues the stored context: its queue wait, attempt and webhook spans are the submit's
children in the caller's trace, and the webhook POST carries the webhook span's traceparent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.procs import Proc, serving, write_formation
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.slow

KEY = "trace-client-key"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@dataclass(frozen=True)
class Exported:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class OtlpReceiver:
    """POST /v1/traces (OTLP/HTTP protobuf): every span received, with its service name."""

    def __init__(self) -> None:
        self.spans: list[Exported] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.add(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                with self.lock:
                    self.spans.extend(
                        Exported(
                            attrs.get("service.name", ""),
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                        )
                        for s in scope.spans
                    )

    def one(self, name: str, timeout: float = 15) -> Exported:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [s for s in self.spans if s.name == name]
            if found:
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {name} span; got {[s.name for s in self.spans]}")


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    try:
        yield receiver
    finally:
        receiver.http.shutdown()
        receiver.http.server_close()


def otel_env(endpoint: str, service: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def test_the_worker_process_continues_the_trace_the_api_process_stored(tmp_path: Path) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "traced",
            "keys": {"client": [KEY], "admin": ["trace-admin-key"]},
            "storage": {"url": "sqlite:///traced.db"},
            "async": {"webhook_allow_hosts": ["127.0.0.1"]},
            "workers": {"poll_interval": 0.2},
            "agents": [{"id": "echo", "handler": "tests.support.agents:echo"}],
        },
    )
    repo = str(Path(__file__).resolve().parents[2])
    with otlp_receiver() as otlp, receiving() as hook:
        worker_env = {**otel_env(otlp.url, "errand-worker"), "PYTHONPATH": repo}
        worker = Proc(["worker", "--config", str(cfg)], tmp_path / "worker.log", worker_env)
        api_env = {**otel_env(otlp.url, "errand-api"), "PYTHONPATH": repo}
        with serving(cfg, tmp_path / "serve.log", "--no-workers", env=api_env) as (base, _):
            worker.start()
            try:
                headers = {"X-Muxi-Client-Key": KEY, "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
                with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                    r = c.post("/v1/chat", json={"message": "hi", "mode": "async", "webhook_url": hook.url})
                    assert r.status_code == 202, r.text
                    doc = c.get(f"/v1/requests/{r.json()['request_id']}", params={"wait": 20}).json()
                    assert doc["status"] == "completed", doc
                [hit] = hook.wait_for(1, timeout=15)
                submit = otlp.one("errand.submit")
                attempt = otlp.one("errand.attempt")
                wait = otlp.one("errand.queue_wait")
                webhook = otlp.one("errand.webhook")
            finally:
                worker.stop()

    assert (submit.service, submit.parent_id) == ("errand-api", CALLER_SPAN)
    for span in (attempt, wait, webhook):
        assert span.service == "errand-worker", (span, worker.tail())
        assert (span.trace_id, span.parent_id) == (TRACE_ID, submit.span_id), span
    assert hit.headers["traceparent"] == f"00-{TRACE_ID}-{webhook.span_id}-01"

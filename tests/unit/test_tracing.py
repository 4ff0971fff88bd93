"""tracing.py: the W3C header rules, the OTEL_* switch in config, and the cost of tracing off."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from errand import tracing
from errand.config import TracingConfig, build_config
from errand.errors import ConfigError

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": PARENT}, {"traceparent": PARENT}),
        ({"traceparent": f" {PARENT.upper()} "}, {"traceparent": PARENT}),
        ({"traceparent": PARENT, "tracestate": "a=1,b=2"}, {"traceparent": PARENT, "tracestate": "a=1,b=2"}),
        ({"traceparent": PARENT, "tracestate": "x" * 513}, {"traceparent": PARENT}),
        ({"traceparent": PARENT, "tracestate": "caf\u00e9=1"}, {"traceparent": PARENT}),
        # a later version may carry more fields; version 00 may not
        ({"traceparent": "01" + PARENT[2:] + "-extra"}, {"traceparent": "01" + PARENT[2:] + "-extra"}),
        ({"traceparent": PARENT + "-extra"}, None),
        ({"traceparent": "ff" + PARENT[2:]}, None),
        ({"traceparent": PARENT.replace("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32)}, None),
        ({"traceparent": PARENT.replace("00f067aa0ba902b7", "0" * 16)}, None),
        ({"traceparent": PARENT[:-1]}, None),
        ({"traceparent": ""}, None),
        ({"tracestate": "a=1"}, None),
        ({}, None),
    ],
)
def test_the_callers_context_is_read_by_the_w3c_rules(
    headers: dict[str, str], expected: dict[str, str] | None
) -> None:
    assert tracing.from_headers(headers) == expected


@pytest.mark.parametrize(
    ("section", "env", "enabled", "exporter", "name"),
    [
        ({}, {}, False, "otlp", "errand"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True, "otlp", "errand"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True, "otlp", "errand"),
        ({}, {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "api"}, True, "console", "api"),
        (
            {},
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"},
            False,
            "none",
            "errand",
        ),
        ({}, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, False, "otlp", "errand"),
        ({"enabled": True}, {}, True, "otlp", "errand"),
        ({"enabled": False}, {"OTEL_TRACES_EXPORTER": "otlp"}, False, "otlp", "errand"),
        (
            {"enabled": True, "exporter": "console", "service_name": "w"},
            {"OTEL_SERVICE_NAME": "x"},
            True,
            "console",
            "w",
        ),
    ],
)
def test_tracing_follows_the_standard_otel_variables(
    section: dict[str, Any], env: dict[str, str], enabled: bool, exporter: str, name: str
) -> None:
    data = {"keys": {"client": ["client-key-aaaaaaaa"]}, "tracing": section}
    cfg = build_config(data, env=env).tracing
    assert cfg == TracingConfig(enabled=enabled, exporter=exporter, service_name=name)


def test_an_unknown_tracing_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"tracing\.sampler"):
        build_config({"keys": {"client": ["client-key-aaaaaaaa"]}, "tracing": {"sampler": "x"}}, env={})


def test_tracing_off_is_a_shared_no_op() -> None:
    assert not tracing.active()
    with tracing.span("x", parent={"traceparent": PARENT}) as one, tracing.span("y") as two:
        assert one is two
        one.set_attribute("k", 1)
        tracing.fail(one, "E", "m")
    assert tracing.carrier() is None
    tracing.record("z", start=1.0, end=2.0, parent=None, attributes={})


def test_an_exporter_that_is_not_installed_names_what_is() -> None:
    with pytest.raises(ConfigError, match=r"'nosuch' is not installed .*console"):
        tracing.configure(service_name="t", exporter="nosuch")
    assert not tracing.active()


def test_configure_builds_a_batch_exporting_provider_and_shutdown_flushes_it() -> None:
    tracing.configure(service_name="t", exporter="console")
    try:
        assert tracing.active()
        with tracing.span("outer") as span:
            span.set_attribute("k", "v")
            carried = tracing.carrier()
        assert carried is not None and carried["traceparent"].startswith("00-")
    finally:
        tracing.shutdown()
    assert not tracing.active()


def test_the_server_and_worker_import_no_opentelemetry_while_tracing_is_off() -> None:
    """Zero cost off: not even the import (the SDK and its exporter take ~100 ms to import)."""
    code = (
        "import sys, errand.api.app, errand.cli.runtime, errand.agents.llm, errand.delivery.dispatcher\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout

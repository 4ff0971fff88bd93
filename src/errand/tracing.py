"""OpenTelemetry traces, optional: spans when tracing is on, a no-op costing nothing when off.

`errand[otel]` installs the SDK; `configure()` (called by `errand serve` and `errand worker`
when `Config.tracing.enabled`) imports it then, never before, so a server without tracing
imports no opentelemetry module at all. Until then `span()` hands back one shared do-nothing
context and `carrier()` None: the cost of tracing off is a function call.

The trace context travels as a W3C carrier (`{"traceparent": ..., "tracestate": ...}`): read
from the submit's headers (`from_headers`, pure, used with tracing on or off so the context is
stored with the request either way), stored with the request, and continued by the worker and
the webhook dispatcher in whatever process claims the work. The provider is errand's own, not
the process-global one: a host application's tracing is left alone, and tests install theirs
with `install()`. Exporter, endpoint, sampler, batch timings and resource come from the
standard `OTEL_*` variables, read by the SDK itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from errand.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["Span", "carrier", "configure", "from_headers", "install", "record", "shutdown", "span"]

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?")
_TRACESTATE = re.compile(r"[ -~]{0,512}")
"""W3C tracestate: at most 512 printable ASCII characters are kept (the spec lets us drop more)."""
_INVALID_IDS = ("0" * 32, "0" * 16)

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_owned = False


class _Off:
    """What `span()` yields with tracing off: takes attributes and drops them."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass


_OFF = _Off()
_NULL = contextlib.nullcontext(_OFF)


def from_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The caller's W3C trace context, or None. An invalid `traceparent` is ignored (the W3C
    rule: the callee starts a new trace), never an error; a malformed or oversized
    `tracestate` is dropped and the traceparent kept."""
    parent = headers.get("traceparent")
    if parent is None:
        return None
    parent = parent.strip().lower()
    m = _TRACEPARENT.fullmatch(parent)
    if m is None or m.group(1) == "ff" or (m.group(1) == "00" and m.group(5)):
        return None
    if m.group(2) == _INVALID_IDS[0] or m.group(3) == _INVALID_IDS[1]:
        return None
    found = {"traceparent": parent}
    state = headers.get("tracestate")
    if state and _TRACESTATE.fullmatch(state.strip()):
        found["tracestate"] = state.strip()
    return found


def active() -> bool:
    """True when spans are recorded (configured or installed)."""
    return _tracer is not None


def install(provider: TracerProvider, *, owned: bool = False) -> None:
    """Record errand's spans with `provider` from now on (tests install an in-memory exporter's).
    An `owned` provider is shut down (flushed) by `shutdown()`."""
    global _tracer, _provider, _owned
    _provider, _owned = provider, owned
    _tracer = provider.get_tracer("errand")


def configure(*, service_name: str, exporter: str) -> None:
    """Build a provider exporting through `exporter` (an `OTEL_TRACES_EXPORTER` name: `otlp`,
    `console`, or any installed `opentelemetry_traces_exporter` entry point) with a batch
    processor, and install it. ConfigError names the extra when the SDK is not installed."""
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"tracing is on but OpenTelemetry is not installed ({exc}): pip install 'errand[otel]'"
        ) from None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    install(provider, owned=True)


def _exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    found = {e.name: e for e in entry_points(group="opentelemetry_traces_exporter")}
    if name == "otlp" and "otlp" not in found:  # errand[otel] brings the HTTP one only
        name = "otlp_proto_http"
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"tracing: exporter {name!r} is not installed (installed: {known})")
    return found[name].load()()


def shutdown() -> None:
    """Flush and stop a provider `configure()` built; forget any installed one."""
    global _tracer, _provider, _owned
    if _provider is not None and _owned:
        _provider.shutdown()
    _tracer, _provider, _owned = None, None, False


def _context(parent: Mapping[str, str] | None) -> Any:
    """An OTel Context continuing `parent` (a carrier), or None (the current context)."""
    if parent is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(parent)


def span(
    name: str,
    *,
    kind: str = "internal",
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> contextlib.AbstractContextManager[Span | _Off]:
    """A span around a block, current inside it (so spans opened within are its children), a
    child of `parent` (a stored carrier) or else of the current span. An exception leaving the
    block is recorded, sets the span's status to error and its `error.type`."""
    if _tracer is None:
        return _NULL
    return _recording(_tracer, name, kind, parent, attributes)


@contextlib.contextmanager
def _recording(
    tracer: Tracer,
    name: str,
    kind: str,
    parent: Mapping[str, str] | None,
    attributes: Mapping[str, Any] | None,
) -> Iterator[Span]:
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        name, context=_context(parent), kind=SpanKind[kind.upper()], attributes=attributes
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__qualname__)
            raise


def record(
    name: str, *, start: float, end: float, parent: Mapping[str, str] | None, attributes: Mapping[str, Any]
) -> None:
    """A finished span from `start` to `end` (epoch seconds), e.g. the wait before a claim."""
    if _tracer is None:
        return
    done = _tracer.start_span(name, context=_context(parent), attributes=attributes, start_time=_ns(start))
    done.end(end_time=_ns(max(start, end)))


def fail(current: Span | _Off, error_type: str, message: str) -> None:
    """Mark a span failed without an exception (an attempt whose outcome is `failed`)."""
    if isinstance(current, _Off):
        return
    from opentelemetry.trace import Status, StatusCode

    current.set_attribute("error.type", error_type)
    current.set_status(Status(StatusCode.ERROR, message))


def carrier() -> dict[str, str] | None:
    """The current span's context as a W3C carrier, for storing or for outgoing headers; None
    with tracing off."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    found: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(found)
    return found or None


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)

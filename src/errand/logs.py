"""Logging set-up: one format for errand's and uvicorn's lines, request ids, secrets masked.

`configure()` is called once by the CLI (`errand serve|worker`): every logger -- errand's,
uvicorn's (`uvicorn.error`, `uvicorn.access`), an agent's own -- propagates to the root, whose
only handler buffers the record for `log_writer.LogWriter`: formatted and written in batches on
its own thread (every 0.1 s; WARNING at once; ERROR before the call returns), so neither a slow
stderr nor a write per line costs the event loop.

Formats: `text` is `2025-01-02T03:04:05.678Z INFO errand.worker [req_x] message`, a traceback
on the following lines; `json` is one object per line (`time`, `level`, `logger`, `message`,
`request_id`, the record's extras, `traceback`), encoded by orjson.

A request id comes from the record's `request_id` extra (`extra={"request_id": ...}`), else
from the `REQUEST_ID` context variable that the API and the worker set for the request being
handled (an asyncio task inherits it, so an agent's own log lines carry it too).

Secrets are not logged in the first place; as a last line of defence every formatted line has
each registered secret (keys, webhook secret, model API keys, database passwords) replaced by
`****`, in the text as written and as JSON escapes it.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson
from pydantic import BaseModel, ConfigDict, field_validator

from errand.log_writer import LogWriter, flush_then_die

LogFormat = Literal["text", "json"]

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "LogSettings",
    "SecretMask",
    "TextFormatter",
    "brief",
    "configure",
    "flush",
    "mask_secret",
    "raised",
]


MASK = "****"
MIN_SECRET_LEN = 8
"""Shorter values are not masked: replacing a 3-letter string everywhere would garble the log
(configured keys are at least 8 characters long anyway)."""
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
QUIET_LOGGERS = ("httpx", "httpcore")
"""Held at WARNING: httpx's INFO line per request repeats errand's webhook and model lines, and
httpcore's DEBUG trace of each connection drowns everything else at DEBUG."""


class LogSettings(BaseModel):
    """`logging:` in formation.yaml (config.py holds it as `Config.logging`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["debug", "info", "warning", "error"] = "info"
    """The lowest level written (`--log-level` overrides)."""
    format: LogFormat = "text"
    """text: `time level logger [request_id] message`; json: one object per line."""
    access_log: bool = True
    """One line per HTTP request (uvicorn's access log, in the same format, with the request id
    when the route names one). Costs about as much as the `accepted` line of a submit."""

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("errand_request_id", default=None)
"""The request the current task works for; read for records without a `request_id` extra."""


class SecretMask:
    """The secret values no log line may show; each formatted line is passed through `apply`."""

    def __init__(self) -> None:
        self._forms: tuple[str, ...] = ()

    def add(self, values: Iterable[str | None]) -> None:
        forms = set(self._forms)
        for value in values:
            if value and len(value) >= MIN_SECRET_LEN:
                forms.add(value)
                forms.add(orjson.dumps(value).decode()[1:-1])  # as it appears inside a JSON string
        # longest first: a secret that contains another is replaced whole
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def clear(self) -> None:
        self._forms = ()

    def apply(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


SECRETS = SecretMask()
"""The process's mask, shared by both formatters."""


def mask_secret(value: str | None) -> None:
    """Register a secret learnt at run time (e.g. the webhook secret generated for a database)."""
    SECRETS.add([value])


MAX_MESSAGE = 500
"""An error message quoted in a log line is cut to this many characters (an agent's may be
megabytes; the full one is in the status document)."""


def brief(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` cut to `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def raised(outcome: object) -> BaseException | None:
    """The exception to log with its traceback: one that was raised (it has a traceback), not
    one errand made to describe an outcome (a timeout, a refused result)."""
    if isinstance(outcome, BaseException) and outcome.__traceback__ is not None:
        return outcome
    return None


_SECOND: list[Any] = [-1, ""]
"""The last whole second formatted and its text: strftime once a second, not once a line."""


def iso_time(record: logging.LogRecord) -> str:
    """UTC ISO 8601 with milliseconds: `2025-01-02T03:04:05.678Z`."""
    second = int(record.created)
    cached = _SECOND
    if cached[0] != second:
        cached = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")]
        _SECOND[:] = cached
    return f"{cached[1]}{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """`time level logger [request_id] message`, traceback below; secrets masked. One f-string:
    at INFO a server writes several lines per request."""

    def __init__(self, mask: SecretMask = SECRETS) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        tag = f" [{rid}]" if rid else ""
        line = f"{iso_time(record)} {record.levelname} {record.name}{tag} {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return self._mask.apply(line)


_RECORD_ATTRS = frozenset(
    [*vars(logging.LogRecord("", 0, "", 0, "", None, None)), "message", "asctime", "taskName", "request_id"]
)
"""A LogRecord's own attributes; any other is an `extra=` key, written as a JSON key."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line, encoded by orjson: time, level, logger, message, request_id,
    the record's extras, `traceback` for an exception, `stack_info`; secrets masked."""

    def __init__(self, mask: SecretMask = SECRETS) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                doc[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["traceback"] = record.exc_text
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return self._mask.apply(_dumps(doc))


def _dumps(doc: dict[str, Any]) -> str:
    try:
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # a lone surrogate in a string (orjson refuses it): the slow encoder
        return json.dumps(doc, default=str)


class _BufferHandler(logging.Handler):
    """Hands each record to the writer's buffer, with its message merged (its arguments may
    change after the call) and its `request_id` taken from the context of the thread or task
    that logged it. No lock (the buffer is a deque) and nothing formatted here: formatting is
    the writer's, off the event loop."""

    def __init__(self, writer: LogWriter) -> None:
        super().__init__()
        self._writer = writer

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        if record.args:
            record.msg, record.args = record.getMessage(), None
        self._writer.put(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


class _Installed:
    writer: LogWriter | None = None
    handler: logging.Handler | None = None


def configure(
    settings: LogSettings, *, secrets: Iterable[str | None] = (), stream: TextIO | None = None
) -> None:
    """Route every logger of the process to one buffered handler writing `settings.format` to
    `stream` (stderr) at `settings.level`, with uvicorn's access log on or off, and mask
    `secrets` in every line. Calling it again replaces the set-up."""
    shutdown()
    SECRETS.add(secrets)
    formatter = JsonFormatter() if settings.format == "json" else TextFormatter()
    writer = LogWriter(stream or sys.stderr, formatter.format)
    handler = _BufferHandler(writer)
    _Installed.writer, _Installed.handler = writer, handler
    _flush_on_sigterm()
    # Neither format shows the caller's file and line, thread or process: not collecting them
    # makes each record cheaper to create (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    for name in UVICORN_LOGGERS:  # uvicorn's own set-up is skipped (log_config=None): ours applies
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.setLevel(logging.NOTSET)
        uv.propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.propagate = settings.access_log
    access.addFilter(_access_fields)


def _flush_on_sigterm() -> None:
    """SIGTERM (when nothing else handles it) writes the buffered lines before the process
    ends by it. Only the main thread may set a handler; a handler set by others is kept."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, flush_then_die(flush))


def _access_fields(record: logging.LogRecord) -> bool:
    """uvicorn's access line as JSON keys too: client, method, path, status."""
    args: Any = record.args
    if isinstance(args, tuple) and len(args) == 5:
        record.client, record.method, record.path, _, record.status = args
    return True


def flush() -> None:
    """Write every buffered line now."""
    if _Installed.writer is not None:
        _Installed.writer.flush()


def shutdown() -> None:
    """Write what is buffered and remove the handler (at exit, and before a new configure)."""
    if _Installed.handler is not None:
        logging.getLogger().removeHandler(_Installed.handler)
    if _Installed.writer is not None:
        _Installed.writer.stop()
    _Installed.writer = _Installed.handler = None


atexit.register(shutdown)

"""Logging set-up: one format for errand's and uvicorn's lines, request ids, secrets masked.

`configure()` is called once by the CLI (`errand serve|worker`): every logger -- errand's,
uvicorn's (`uvicorn.error`, `uvicorn.access`), an agent's own -- propagates to the root, whose
only handler is a QueueHandler. Records are formatted and written by one writer thread, in
batches, so a slow stderr (a pipe, a terminal) never stalls the event loop.

Formats: `text` is `2025-01-02T03:04:05.678Z INFO errand.worker [req_x] message`, a traceback
on the following lines; `json` is one object per line (`time`, `level`, `logger`, `message`,
`request_id`, the record's extras, `traceback`), written by python-json-logger with orjson.

A request id comes from the record's `request_id` extra (`extra={"request_id": ...}`), else
from the `REQUEST_ID` context variable that the API and the worker set for the request being
handled (an asyncio task inherits it, so an agent's own log lines carry it too).

Secrets are not logged in the first place; as a last line of defence every formatted line has
each registered secret (keys, webhook secret, model API keys, database passwords) replaced by
`****`, in the text as written and as JSON escapes it.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import logging.handlers
import queue
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson
from pydantic import BaseModel, ConfigDict, field_validator
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

LogFormat = Literal["text", "json"]

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "LogSettings",
    "SecretMask",
    "TextFormatter",
    "brief",
    "configure",
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


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line (python-json-logger, orjson): time, level, logger, message,
    request_id, the record's extras, `traceback` for an exception; secrets masked."""

    def __init__(self, mask: SecretMask = SECRETS) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "request_id"],
            rename_fields={
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "exc_info": "traceback",
            },
            reserved_attrs=[*RESERVED_ATTRS, "taskName"],  # other attributes are extras: keys
        )
        self._mask = mask

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record)

    def format(self, record: logging.LogRecord) -> str:
        return self._mask.apply(super().format(record))


class _RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` (None when it is about no request), from the context
    of the thread or task that logged it -- so it runs before the record is queued."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class _QueueHandler(logging.handlers.QueueHandler):
    """Queues the record with its message merged (its arguments may change after the call);
    formatting, the traceback included, happens on the listener thread. The queue stays in this
    process, so the record is not made picklable."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


BATCH = 512
"""Records written (and flushed) in one write at most: a busy server's lines go out in batches."""
_STOP = object()


class _Writer:
    """The thread that formats queued records and writes them to the stream: all that is
    waiting at once goes out in one write and one flush, not one system call per line."""

    def __init__(self, records: queue.SimpleQueue[Any], stream: TextIO, formatter: logging.Formatter) -> None:
        self._records, self._stream, self._formatter = records, stream, formatter
        self._thread = threading.Thread(target=self._run, name="errand-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._records.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for record in batch:
                if record is _STOP:
                    stopping = True
                    continue
                try:
                    lines.append(self._formatter.format(record) + "\n")
                except Exception:  # a record that cannot be formatted must not end the thread
                    lines.append(f"{iso_time(record)} ERROR errand.logs a log line could not be formatted\n")
            with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing to tell
                self._stream.write("".join(lines))
                self._stream.flush()

    def stop(self) -> None:
        self._records.put(_STOP)
        self._thread.join(5)


class _Installed:
    writer: _Writer | None = None
    handler: logging.Handler | None = None


def configure(
    settings: LogSettings, *, secrets: Iterable[str | None] = (), stream: TextIO | None = None
) -> None:
    """Route every logger of the process to one queued handler writing `settings.format` to
    `stream` (stderr) at `settings.level`, with uvicorn's access log on or off, and mask
    `secrets` in every line. Calling it again replaces the set-up."""
    shutdown()
    SECRETS.add(secrets)
    formatter = JsonFormatter() if settings.format == "json" else TextFormatter()
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    handler = _QueueHandler(records)
    handler.addFilter(_RequestIdFilter())
    _Installed.writer, _Installed.handler = _Writer(records, stream or sys.stderr, formatter), handler
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


def _access_fields(record: logging.LogRecord) -> bool:
    """uvicorn's access line as JSON keys too: client, method, path, status."""
    args: Any = record.args
    if isinstance(args, tuple) and len(args) == 5:
        record.client, record.method, record.path, _, record.status = args
    return True


def shutdown() -> None:
    """Write what is queued and remove the handler (at exit, and before a new configure)."""
    if _Installed.handler is not None:
        logging.getLogger().removeHandler(_Installed.handler)
    if _Installed.writer is not None:
        _Installed.writer.stop()
    _Installed.writer = _Installed.handler = None


atexit.register(shutdown)

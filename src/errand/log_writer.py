"""The log's one writer: records are buffered and written in batches, never one write per line.

Measured (bench/logging_bench.py): a handler that wakes a writer thread per record costs the
server a thread switch, a write and a flush for each of the ~4 lines of a request -- ~37 us of
CPU per line, a fifth of a submit. Here the calling thread only appends the record to a deque
(atomic, no lock); the writer thread wakes every FLUSH_INTERVAL, formats all that is waiting and
writes it in one write and one flush.

What must not be lost is not left to the timer: a WARNING wakes the writer at once, and an
ERROR (a failure, its traceback) is written and flushed by the thread that logs it before the
call returns, so it survives a SIGKILL a moment later. At exit and on SIGTERM (`flush_then_die`,
installed by `logs.configure`) everything buffered is written first. Only INFO/DEBUG lines of the
last FLUSH_INTERVAL can be lost, and only to a SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import TextIO

__all__ = ["BATCH", "FLUSH_INTERVAL", "LogWriter", "flush_then_die"]

FLUSH_INTERVAL = 0.1
"""Seconds an INFO line may wait in the buffer: short for a person tailing the log, long enough
that a busy server writes hundreds of lines per system call."""
BATCH = 512
"""Lines joined into one write at most (a backlog is written in several)."""


class LogWriter:
    """Formats buffered records with `format` and writes them to `stream`, on its own thread
    (every FLUSH_INTERVAL, or at once for a WARNING) or in the caller's (`flush`, ERROR+)."""

    def __init__(self, stream: TextIO, format: Callable[[logging.LogRecord], str]) -> None:
        self._stream, self._format = stream, format
        self._pending: deque[logging.LogRecord] = deque()
        self._lock = threading.RLock()  # one flush at a time keeps lines in order; re-entered by
        # a signal handler or a format() that logs, so not a plain Lock
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="errand-log-writer", daemon=True)
        self._thread.start()

    def put(self, record: logging.LogRecord) -> None:
        self._pending.append(record)
        if record.levelno >= logging.ERROR:
            self.flush()
        elif record.levelno >= logging.WARNING:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write (and flush) every buffered record now, in the order they were logged."""
        with self._lock:
            lines: list[str] = []
            while self._pending:
                lines.append(self._line(self._pending.popleft()))
                if len(lines) >= BATCH:
                    self._write(lines)
                    lines = []
            if lines:
                self._write(lines)

    def _line(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record) + "\n"
        except Exception:  # a record that cannot be formatted must not stop the others
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            return f"{when}.{int(record.msecs):03d}Z ERROR errand.logs a log line could not be formatted\n"

    def _write(self, lines: list[str]) -> None:
        with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing to tell
            self._stream.write("".join(lines))
            self._stream.flush()

    def stop(self) -> None:
        """Write what is buffered and end the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        self.flush()


def flush_then_die(flush: Callable[[], None]) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that writes the buffered lines, then ends the process by the signal as
    the default action would (uvicorn restores the previous handler and re-raises the signal it
    caught once it has shut down: this handler is that previous one)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        flush()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    return handler

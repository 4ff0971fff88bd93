"""errand.log_writer: INFO lines buffered and written in batches; WARNING at once; ERROR before
the call returns; nothing buffered lost at exit or to SIGTERM (real child processes)."""

from __future__ import annotations

import io
import logging
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from errand.log_writer import FLUSH_INTERVAL, LogWriter


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("errand.test", level, "", 0, msg, None, None)


class SlowCount(io.StringIO):
    """Counts the writes: a batch of lines is one write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def wait_for(predicate: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


def test_info_lines_are_buffered_and_written_together() -> None:
    out = SlowCount()
    writer = LogWriter(out, lambda r: r.getMessage())
    try:
        for i in range(300):
            writer.put(record(logging.INFO, f"line {i}"))
        wait_for(lambda: out.getvalue().count("\n") == 300, 5 * FLUSH_INTERVAL + 2)
        assert out.getvalue().splitlines() == [f"line {i}" for i in range(300)]
        assert out.writes <= 3  # one write per batch, not one per line
    finally:
        writer.stop()


def test_an_error_is_written_before_the_call_returns_with_what_came_before() -> None:
    out = io.StringIO()
    writer = LogWriter(out, lambda r: r.getMessage())
    try:
        writer.put(record(logging.INFO, "started"))
        writer.put(record(logging.ERROR, "failed"))
        assert out.getvalue() == "started\nfailed\n"  # no waiting: the caller wrote it
    finally:
        writer.stop()


def test_a_warning_wakes_the_writer_at_once() -> None:
    out = io.StringIO()
    writer = LogWriter(out, lambda r: r.getMessage())
    try:
        time.sleep(FLUSH_INTERVAL / 2)  # the writer is asleep in its interval
        started = time.monotonic()
        writer.put(record(logging.WARNING, "lease lost"))
        wait_for(lambda: "lease lost" in out.getvalue())
        assert out.getvalue() == "lease lost\n"
        assert time.monotonic() - started < FLUSH_INTERVAL  # woken, not at the next tick
    finally:
        writer.stop()


def test_a_line_that_cannot_be_formatted_does_not_stop_the_others() -> None:
    out = io.StringIO()

    def fmt(r: logging.LogRecord) -> str:
        if r.msg == "bad":
            raise RuntimeError("broken formatter")
        return r.getMessage()

    writer = LogWriter(out, fmt)
    writer.put(record(logging.INFO, "bad"))
    writer.put(record(logging.INFO, "good"))
    writer.stop()
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR errand.logs .*", lines[0])
    assert "could not be formatted" in lines[0] and lines[1] == "good"


def test_lines_from_many_threads_are_all_written_once() -> None:
    out = io.StringIO()
    writer = LogWriter(out, lambda r: r.getMessage())

    def burst(t: int) -> None:
        for i in range(500):
            writer.put(record(logging.ERROR if i % 100 == 0 else logging.INFO, f"{t}-{i}"))

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    lines = out.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{t}-{i}" for t in range(4) for i in range(500))
    for t in range(4):  # each thread's lines keep their order
        mine = [line for line in lines if line.startswith(f"{t}-")]
        assert mine == [f"{t}-{i}" for i in range(500)]


CHILD = """
import logging, os, signal, sys, time
from errand import logs

logs.configure(logs.LogSettings(), stream=open(sys.argv[1], "a"))
log = logging.getLogger("errand.child")
for i in range(50):
    log.info("info line %d", i, extra={"request_id": "req_child"})
how = sys.argv[2]
if how == "error-then-sigkill":
    log.error("the failure, before the crash", extra={"request_id": "req_child"})
    os.kill(os.getpid(), signal.SIGKILL)
elif how == "exit":
    sys.exit(0)
else:
    print("ready", flush=True)
    time.sleep(30)
"""


def run_child(tmp_path: Path, how: str) -> tuple[int, str]:
    log = tmp_path / "child.log"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    args = [sys.executable, str(script), str(log), how]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        if how == "sigterm":
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    return code, log.read_text()


def test_sigterm_writes_the_buffered_lines_then_ends_the_process_by_the_signal(tmp_path: Path) -> None:
    code, text = run_child(tmp_path, "sigterm")
    assert code == -signal.SIGTERM
    assert text.count("[req_child] info line") == 50


def test_exit_writes_the_buffered_lines(tmp_path: Path) -> None:
    code, text = run_child(tmp_path, "exit")
    assert code == 0 and text.count("info line") == 50


def test_an_error_line_survives_a_sigkill_right_after_it(tmp_path: Path) -> None:
    code, text = run_child(tmp_path, "error-then-sigkill")
    assert code == -signal.SIGKILL
    assert "ERROR errand.child [req_child] the failure, before the crash" in text
    assert text.count("info line") == 50  # written with it, in order, before it

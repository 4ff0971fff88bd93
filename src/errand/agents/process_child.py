"""The child of an `isolation: process` agent: run one attempt of one handler, report, exit.

Started by agents/process.py as `python -m errand.agents.process_child PARENT_PID`. It reads the
`start` message from stdin, runs the handler with a RunContext whose sink writes `event`
messages, and ends with one `result` or `error` message (agents/process_wire.py), or an `ask`
when `ctx.ask` went past the answers the start gave it.

SIGTERM (the parent's cancel or timeout) raises SystemExit wherever an async agent is, even
inside `time.sleep`, so its `finally` blocks run; a sync handler's thread is not waited for.
The parent sends SIGKILL after its grace. `ctx.checkpoint()` works as inline (it yields to the
loop); a cancel arrives as that SIGTERM, not as Cancelled. SIGINT is ignored (a terminal's
Ctrl-C reaches the server, which stops its children itself), and the child dies with the
server (PR_SET_PDEATHSIG on Linux, else the end of its stdin): a killed server leaves no agent
running beside the attempt that takes its request over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from errand.agents.base import InputRequested, RunContext, coerce_result
from errand.agents.loading import call, is_async, load_function
from errand.agents.process_wire import decode, encode, error_message

_PR_SET_PDEATHSIG = 1
_TERMINATED = 128 + signal.SIGTERM


class _Channel:
    """The protocol's write end: whole lines, from any thread, in order."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = memoryview(encode(message))
        with self._lock:
            while line:
                line = line[os.write(self._fd, line) :]

    def sink(self, type: str, data: dict[str, Any], progress: Any) -> None:
        report = {"t": "event", "type": type, "data": data}
        if progress is not None:
            report["progress"] = progress.to_dict()
        try:
            self.send(report)
        except TypeError as exc:  # as inline: an event that cannot be stored is dropped, logged
            print(f"errand: dropped a {type} event that is not JSON-serializable: {exc}", file=sys.stderr)


_stopping = threading.Event()
"""Set by SIGTERM: the attempt is being stopped, and reports nothing more."""


def _on_sigterm(signum: int, frame: object) -> None:
    _stopping.set()
    raise SystemExit(_TERMINATED)


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(_TERMINATED)


def _watch_stdin() -> None:
    """End of input means the parent is gone (where PR_SET_PDEATHSIG does not exist)."""
    for _ in sys.stdin.buffer:
        pass
    os._exit(_TERMINATED)


async def _attempt(start: dict[str, Any], channel: _Channel) -> None:
    for entry in reversed(start.get("sys_path") or []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    c = start["ctx"]
    ctx = RunContext(
        request_id=c["request_id"],
        user_id=c["user_id"],
        session_id=c["session_id"],
        metadata=c["metadata"],
        attempt=c["attempt"],
        agent_id=c["agent_id"],
        sink=channel.sink,
        messages=c.get("messages") or [],
        inputs=dict(c.get("inputs") or {}),
        input_state=c.get("input_state"),
        now=_clock_from(float(c.get("now") or time.time())),
    )
    threading.Thread(target=_watch_stdin, daemon=True).start()
    try:
        fn = load_function(start["handler"], where="handler", base_dir=start.get("base_dir"))
        value = await call(fn, is_async(fn), None, start["message"], ctx)  # alone here: the default pool
        result = coerce_result(value, ctx.agent_id).to_dict()
        try:
            channel.send({"t": "result", "result": result})
        except TypeError as exc:
            raise TypeError(f"result is not JSON-serializable: {exc}") from None
    except InputRequested as asked:  # an ask past the answers: the parent pauses the attempt
        _send_ask(channel, asked)
    except BaseException as exc:  # everything the agent raised, SystemExit included, is reported
        if _stopping.is_set():
            raise
        channel.send(error_message(exc))


def _send_ask(channel: _Channel, asked: InputRequested) -> None:
    try:
        channel.send({"t": "ask", "ask": asked.ask.to_dict(), "state": asked.state})
    except TypeError as exc:  # the kept state must cross (and be stored) as JSON
        channel.send(error_message(TypeError(f"ctx.ask state is not JSON-serializable: {exc}")))


def _clock_from(parent_now: float) -> Callable[[], float]:
    """The parent's clock as of the start, moved on by this process's monotonic time: an ask's
    expiry counts on the server's clock."""
    started = time.monotonic()
    return lambda: parent_now + (time.monotonic() - started)


def main() -> NoReturn:
    _die_with(int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    channel = _Channel(os.dup(1))
    os.dup2(2, 1)  # the agent's prints go to the server's log, never into the protocol
    code = 0
    loop = asyncio.new_event_loop()
    task = loop.create_task(_attempt(decode(sys.stdin.buffer.readline()), channel))
    try:
        loop.run_until_complete(task)
    except SystemExit:  # SIGTERM: let the agent's coroutine unwind (its finally blocks run)
        code = _TERMINATED
        if not task.done():  # (asyncio never stops for a task that ended in SystemExit)
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
    except Exception:
        traceback.print_exc()
        code = 70
    sys.stderr.flush()
    os._exit(code)  # no waiting for a sync handler's thread (asyncio.run would join it)


if __name__ == "__main__":
    main()

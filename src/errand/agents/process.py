"""`isolation: process`: a handler agent whose every attempt runs in a child process of its own.

Inline, an `async def` handler that blocks (time.sleep, a CPU loop, a C call) stalls the whole
server, and neither cancel nor task_timeout can stop it. Here the attempt runs in
`errand.agents.process_child`; its reports cross as lines (agents/process_wire.py) into the
attempt's RunContext, so progress, content and events stream as inline. `ctx.ask` works as inline:
the child gets the answers so far (`ctx.inputs`, `ctx.input_state`), and an ask past them
comes back as an `ask` message, raised here as InputRequested (the attempt pauses). Stopping the attempt
(cancel, task_timeout, shutdown, lease lost) cancels this coroutine, which sends the child
SIGTERM, then SIGKILL after `workers.kill_grace_seconds`; the attempt ends only once the child
is gone, so a retry never runs beside it.

A child that dies without a result fails or retries only its own request:
- killed by SIGKILL (the OOM killer, an operator), SIGTERM, SIGINT or SIGHUP from outside:
  AgentProcessKilled, transient -- retried within max_attempts, as a lost worker would be;
- any other signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) or an exit without a result
  (os._exit, sys.exit): AgentProcessCrashed, permanent -- a native crash follows from the code
  and its input, and running it again repeats its side effects only to crash again.
The cost is a Python start per attempt (see bench/isolation_bench.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from errand.agents.base import InputRequested, RunContext
from errand.agents.process_wire import MAX_LINE_BYTES, decode, encode, exception_from
from errand.errors import AgentProcessCrashed, AgentProcessKilled, PermanentError
from errand.models import InputAsk, Progress, Result

__all__ = ["ProcessAgent", "exit_error"]

log = logging.getLogger("errand.agents")

CHILD_MODULE = "errand.agents.process_child"
_KILLED_FROM_OUTSIDE = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def exit_error(returncode: int) -> AgentProcessCrashed | AgentProcessKilled:
    """What a child that ended without a result means (see the module docstring)."""
    if returncode >= 0:
        return AgentProcessCrashed(f"agent process exited with code {returncode} before returning a result")
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return AgentProcessCrashed(f"agent process killed by signal {-returncode}")
    if sig in _KILLED_FROM_OUTSIDE:
        return AgentProcessKilled(f"agent process killed by {sig.name}")
    return AgentProcessCrashed(f"agent process killed by {sig.name}")


class ProcessAgent:
    """A `module:function` handler run in a child process per attempt."""

    def __init__(
        self,
        id: str,
        handler: str,
        *,
        base_dir: str,
        description: str = "",
        options: dict[str, Any] | None = None,
        kill_grace: float = 5.0,
    ) -> None:
        self.id = id
        self.description = description
        self.handler = handler
        self.base_dir = base_dir
        self.options = dict(options or {})
        self.kill_grace = kill_grace

    async def run(self, message: str, ctx: RunContext) -> Result:
        ctx.metadata["agent_options"] = dict(self.options)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            CHILD_MODULE,
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_LINE_BYTES,
        )
        try:
            return await self._converse(proc, message, ctx)
        finally:
            await self._end(proc, ctx.request_id)

    def _start_message(self, message: str, ctx: RunContext) -> bytes:
        context = {
            "request_id": ctx.request_id,
            "user_id": ctx.user_id,
            "session_id": ctx.session_id,
            "metadata": ctx.metadata,
            "attempt": ctx.attempt,
            "agent_id": ctx.agent_id,
            "messages": ctx.messages,
            "inputs": ctx.inputs,
            "input_state": ctx.input_state,
            "now": ctx.now(),
        }
        start = {"t": "start", "handler": self.handler, "base_dir": self.base_dir, "sys_path": sys.path}
        return encode({**start, "message": message, "ctx": context})

    async def _converse(self, proc: asyncio.subprocess.Process, message: str, ctx: RunContext) -> Result:
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(ConnectionError):  # died at once: its exit code says why
            proc.stdin.write(self._start_message(message, ctx))
            await proc.stdin.drain()
        final: dict[str, Any] | None = None
        while final is None:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # asyncio's LimitOverrunError, as readline raises it
                raise PermanentError(f"agent process sent a message over {MAX_LINE_BYTES} bytes") from None
            if not line:
                break
            msg = decode(line)
            if msg["t"] == "event":
                ctx.sink(str(msg["type"]), msg["data"], Progress.from_dict(msg.get("progress")))
            elif msg["t"] in ("result", "error", "ask"):
                final = msg
        returncode = await proc.wait()
        if final is not None and final["t"] == "result":
            return Result.from_dict(final["result"]) or Result("", self.id)
        if final is not None and final["t"] == "ask":  # the child asked: this attempt pauses
            ask = InputAsk.from_dict(final["ask"])
            assert ask is not None
            raise InputRequested(ask, final.get("state"))
        if final is not None:
            exc = exception_from(final)
            child_traceback = str(final.get("traceback", "")).rstrip()
            log.warning(
                "agent %r raised in its process for request %s:\n%s", self.id, ctx.request_id, child_traceback
            )
            if child_traceback:  # the attempt log keeps where it was raised, not only this re-raise
                exc.add_note(f"raised in the agent process:\n{child_traceback}")
            if isinstance(exc, Exception):
                raise exc
            raise AgentProcessCrashed(f"agent raised {type(exc).__name__}: {exc}")
        error = exit_error(returncode)
        log.warning("agent %r: %s (request %s)", self.id, error.message, ctx.request_id)
        raise error

    async def _end(self, proc: asyncio.subprocess.Process, request_id: str) -> None:
        """Make sure the child is gone: SIGTERM, SIGKILL after the grace (at once
        if this is cancelled meanwhile, as at a forced shutdown)."""
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.kill_grace)
        except TimeoutError:
            log.warning(
                "agent %r process for request %s outlived SIGTERM by %.1fs; SIGKILL",
                self.id,
                request_id,
                self.kill_grace,
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise

    def __repr__(self) -> str:
        return f"ProcessAgent({self.id!r}, {self.handler!r})"

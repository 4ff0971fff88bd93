"""Which process is this, and is a registered one still running? (pid + start time)

A worker registers the process it runs in, so that another process can tell at once that it died
instead of waiting for its lease to expire. A pid alone proves nothing: pids are reused, and
they mean something only inside one pid namespace of one running kernel. So a process is named
by its `node` (the kernel's boot id and the pid namespace), its pid, and its start time (field
22 of /proc/<pid>/stat: clock ticks since boot). Another process is judged dead only when it is
on the same node and its pid is gone, a zombie, or now names a process started at another time.
Everything else (another host, another container, no /proc) is left to the lease: a false
"alive" costs a lease period, a false "dead" would run a request twice at once.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkerProcess", "dead", "this_process"]

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    """Where a registered worker runs."""

    host: str
    """The host name, for operators (not used to judge liveness)."""
    node: str
    """The pid namespace of one running kernel: pids compare only within one node."""
    pid: int
    started: str | None
    """The process start time (clock ticks since boot); None where the system does not say."""


@functools.cache
def _node() -> str:
    """`<boot id>/<pid namespace>` on Linux; elsewhere the host name (pids of one host)."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return f"host:{socket.gethostname()}"
    return f"{boot}/{namespace}"


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc/<pid>/stat; None when there is no such
    process. The command name (field 2) may hold spaces and parentheses: fields are counted
    after its last ')'."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime)


def _start_time(pid: int) -> str | None:
    if not _PROC.joinpath("self").exists():
        return None
    found = _stat(pid)
    return None if found is None else found[1]


def this_process() -> WorkerProcess:
    """The process calling."""
    pid = os.getpid()
    return WorkerProcess(host=socket.gethostname(), node=_node(), pid=pid, started=_start_time(pid))


def _running(process: WorkerProcess) -> bool:
    """Is this very process (same pid, same start) still running? True when it cannot be told."""
    if not _PROC.joinpath("self").exists():  # no /proc: the pid exists or not, no reuse check
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # e.g. PermissionError: someone else's, alive
            return True
        return True
    try:
        found = _stat(process.pid)
    except (OSError, ValueError, IndexError):  # hidden (hidepid) or unreadable: assume alive
        return True
    if found is None:
        return False
    state, started = found
    if state in ("Z", "X"):  # exited, not reaped yet
        return False
    return process.started is None or started == process.started


def dead(process: WorkerProcess) -> bool:
    """True only when the process is known to be gone: on this node, and its pid free, a
    zombie, or reused by a process started at another time."""
    return process.node == _node() and not _running(process)

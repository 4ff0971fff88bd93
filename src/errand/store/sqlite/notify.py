"""Cross-process wake-ups for SQLite: Unix datagram sockets in a folder beside the database.

Every store on the file binds `<db>.notify/<pid>-<random>.sock`. After a commit it sends one
small datagram to every other socket there, saying what happened; the receiver sets the same
in-process events as a local commit would. Only a hint: a lost or late datagram costs at most a
`poll_interval` (waiters still poll), and a spurious one costs a re-read. Wire format (ASCII):
the first line holds flags (w = work, x = cancellation, o = outbox, a = wake everything), each
further line one request id whose watchers to wake.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

MAX_DATAGRAM = 2000  # under every platform's AF_UNIX datagram limit (macOS: 2048 by default)
MAX_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS, with the trailing NUL
MAX_MESSAGES = 8  # more ids than fit in these many datagrams: send "wake everything" instead
REFRESH = 1.0  # seconds a peer listing is trusted even if the folder's mtime did not change
OnMessage = Callable[[str, list[str]], None]


def notify_dir(db_path: str) -> str:
    """`<db>.notify` beside the file, or a short folder in the temp dir when socket paths there
    would be too long. Derived from the real path alone, so every process picks the same one."""
    real = os.path.realpath(db_path)
    beside = real + ".notify"
    if len(os.fsencode(beside)) + 32 <= MAX_PATH:  # room for "/<pid>-<random>.sock"
        return beside
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"errand-{digest}.notify")


def encode(flags: str, ids: Iterable[str]) -> list[bytes]:
    """Datagrams carrying flags and ids, each under MAX_DATAGRAM; [b"a"] if that takes too many."""
    messages: list[bytes] = []
    current = flags.encode()
    for request_id in ids:
        line = b"\n" + request_id.encode("utf-8", "replace")
        if len(current) + len(line) > MAX_DATAGRAM:
            messages.append(current)
            current = b""
            if len(line) > MAX_DATAGRAM or len(messages) >= MAX_MESSAGES:
                return [b"a"]
        current += line
    messages.append(current)
    return messages


def decode(data: bytes) -> tuple[str, list[str]]:
    head, *ids = data.decode("utf-8", "replace").split("\n")
    return head, [i for i in ids if i]


class Notifier:
    """One bound socket, the cached list of peers, and the wake-ups waiting to be sent."""

    def __init__(self, folder: str, sock: socket.socket, own: str, on_message: OnMessage) -> None:
        self._folder, self._sock, self._own, self._on_message = folder, sock, own, on_message
        self._loop = asyncio.get_running_loop()
        self._peers: list[str] = []
        self._listed_at = -REFRESH
        self._listed_mtime = -1
        self._flags: set[str] = set()
        self._ids: dict[str, None] = {}
        self._scheduled = False
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._receive)

    @classmethod
    def start(cls, db_path: str, on_message: OnMessage) -> Notifier | None:
        """Bind this process's socket; None (logged once, at WARNING) when that is not possible."""
        if os.name != "posix" or not hasattr(socket, "AF_UNIX"):
            log.warning("sqlite store: no Unix sockets here; other processes' writes are seen by polling")
            return None
        folder = notify_dir(db_path)
        sock: socket.socket | None = None
        own = ""
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                raise OSError(f"{folder} is not a folder owned by this user")
            own = os.path.join(folder, f"{os.getpid()}-{secrets.token_hex(4)}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(own)
            return cls(folder, sock, own, on_message)
        except (OSError, RuntimeError, NotImplementedError) as exc:
            if sock is not None:
                sock.close()
                with contextlib.suppress(OSError):
                    os.unlink(own)
            log.warning(
                "sqlite store: cross-process wake-ups off (%s); other processes' writes are seen by polling",
                exc,
            )
            return None

    # -- sending --------------------------------------------------------------------------------
    def notify(self, flags: str = "", ids: Iterable[str] = ()) -> None:
        """Queue a wake-up for the other processes; sent once per event-loop tick."""
        if self._closed:
            return
        self._flags.update(flags)
        self._ids.update(dict.fromkeys(ids))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._closed or not (self._flags or self._ids):
            return
        flags = "".join(sorted(self._flags))
        messages = encode(flags, self._ids)
        self._flags.clear()
        self._ids.clear()
        for peer in self._list_peers():
            for message in messages:
                try:
                    self._sock.sendto(message, peer)
                except BlockingIOError:  # its queue is full: it is busy, and it polls anyway
                    break
                except (ConnectionRefusedError, FileNotFoundError):  # nobody bound: a dead process
                    with contextlib.suppress(OSError):
                        os.unlink(peer)
                    self._peers.remove(peer)
                    break
                except OSError as exc:
                    log.debug("sqlite store: wake-up to %s failed: %s", peer, exc)
                    self._listed_at = -REFRESH  # list again next time
                    break

    def _list_peers(self) -> list[str]:
        """The other sockets in the folder, listed again when it changed or every REFRESH s."""
        now = time.monotonic()
        try:
            mtime = os.stat(self._folder).st_mtime_ns
        except OSError:
            mtime = -1
        if mtime != self._listed_mtime or now - self._listed_at >= REFRESH:
            try:
                with os.scandir(self._folder) as entries:
                    self._peers = [
                        e.path for e in entries if e.name.endswith(".sock") and e.path != self._own
                    ]
            except OSError:
                self._peers = []
            self._listed_at, self._listed_mtime = now, mtime
        return list(self._peers)

    # -- receiving ------------------------------------------------------------------------------
    def _receive(self) -> None:
        for _ in range(1000):  # bounded, so a flood cannot starve the loop
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("sqlite store: wake-up socket read failed: %s", exc)
                return
            try:
                self._on_message(*decode(data))
            except Exception:
                log.exception("sqlite store: handling a wake-up from another process failed")

    def close(self) -> None:
        """Send what is queued, stop listening, remove our socket file."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self._own)

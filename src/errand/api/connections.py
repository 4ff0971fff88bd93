"""HTTP connection limits: uvicorn's httptools protocol with a connection cap, keep-alive and
header timeouts and a header-size cap, and the open-file limit raised to fit them.

uvicorn offers none of these for httptools: its keep-alive timer starts only after a first
response (a silent new socket stays forever), nothing bounds how long or how large a request
head may be (httptools buffers a 200 MB header whole), and `limit_concurrency` answers 503 to
new requests while idle sockets keep their file descriptors. Here a connection that runs no
request -- new, between requests, or still sending its head -- is "waiting": it is closed
after `keepalive_timeout` of silence, its head must end within `header_timeout` of its first
byte (408) and `max_header_bytes` (431), and at the cap a new connection closes the oldest
waiting one, so idle sockets can never lock others out; only when every connection is running
a request does a new one get 503. Refusals are the usual error envelope (api/errors.py).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from errand.api.errors import MalformedBody, errand_error_response
from errand.config import Config
from errand.errors import ConfigError, ErrandError, HeadersTooLarge, RequestTimeout, ServiceUnavailable

__all__ = ["ConnectionLimits", "LimitedHttpProtocol", "limited_protocol", "raise_fd_limit"]

log = logging.getLogger("errand.api")

FD_CEILING = 65536
"""The soft open-file limit is raised towards the hard one, but not past this."""
FD_SPARE = 64
"""Files the process needs besides client sockets, database pool and webhook connections
(the listening socket, SQLite's db/wal/shm, the event loop's own, logs, imports)."""
LINGER_S = 1.0
LINGER_BYTES = 1024 * 1024
"""After an error answer the client may still be sending (a huge header): up to this much of
it is read and dropped, for up to LINGER_S, so that closing does not reset the connection
before the client has read the answer."""


def raise_fd_limit(ceiling: int = FD_CEILING) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (at most `ceiling`); the soft limit
    in effect afterwards. Many hosts start processes at 1024, fewer than a busy server holds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if target <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:  # pragma: no cover - refused by the platform
        log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The `server.*` connection settings in effect (max_connections fitted to the fd limit)."""

    max_connections: int
    keepalive_timeout: float
    header_timeout: float
    max_header_bytes: int

    @classmethod
    def from_config(cls, config: Config, fd_limit: int) -> ConnectionLimits:
        """The formation's limits; max_connections is lowered (and a warning logged) when the
        open-file limit leaves no room for that many sockets beside the database and webhooks."""
        server = config.server
        room = fd_limit - FD_SPARE - config.storage.pool_size - config.async_.webhook_concurrency
        cap = max(1, min(server.max_connections, room))
        if cap < server.max_connections:
            log.warning(
                "server.max_connections lowered from %d to %d: the open-file limit is %d",
                server.max_connections,
                cap,
                fd_limit,
            )
        return cls(
            cap, server.keepalive_timeout_seconds, server.header_timeout_seconds, server.max_header_bytes
        )


class LimitedHttpProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection under ConnectionLimits; a subclass per server (limited_protocol)
    holds the limits and the server's waiting connections."""

    limits: ClassVar[ConnectionLimits]
    waiting: ClassVar[dict[LimitedHttpProtocol, None]]
    """Connections running no request, oldest first: those the cap may close to make room."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        """No request running or being read: the next bytes are a request head."""
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger: int | None = None
        """Bytes still to drop after an error answer; None while the connection is in use."""
        self._linger_timer: asyncio.TimerHandle | None = None

    # connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = self.limits.max_connections
        if len(self.connections) > cap and not self._make_room():
            log.warning("refused a connection: all %d connections are running requests", cap)
            message = f"too many connections (server.max_connections = {cap}); retry shortly"
            self._refuse(ServiceUnavailable(message))
            return
        self._start_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.pop(self, None)
        for timer in (self._head_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._linger_timer = None
        super().connection_lost(exc)

    def _start_waiting(self) -> None:
        """No request runs: evictable, and closed after keepalive_timeout without a byte."""
        self.waiting[self] = None
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.keepalive_timeout, self.timeout_keep_alive_handler
        )

    def _make_room(self) -> bool:
        """Close the connection that has waited longest; False when none is waiting."""
        oldest = next(iter(self.waiting), None)
        if oldest is None:
            return False
        del self.waiting[oldest]
        log.debug("connection cap reached: closed the oldest idle connection")
        oldest.transport.close()
        return True

    # reading

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            self._drop(len(data))
        elif not self._in_head:
            super().data_received(data)
        else:
            self._head_received(data)

    def _head_received(self, data: bytes) -> None:
        """Feed head bytes within max_header_bytes; what lies past the end of the head (a body,
        a pipelined request) is fed on as usual."""
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
        room = self.limits.max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        if room > 0:
            super().data_received(data[:room])  # the head may end within the limit
        if self.transport.is_closing():
            return
        if self._in_head:
            limit = self.limits.max_header_bytes
            log.warning("refused a request from %s: its head is over %d bytes", self._peer(), limit)
            self._refuse(
                HeadersTooLarge(
                    f"request line and headers exceed {limit} bytes (server.max_header_bytes)",
                    details={"max_header_bytes": limit},
                )
            )
            return
        self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def on_response_complete(self) -> None:
        idle = not self.pipeline
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._start_waiting()

    def send_400_response(self, msg: str) -> None:
        """httptools refused the bytes: answer in the error envelope rather than plain text."""
        self._refuse(MalformedBody(f"not a valid HTTP/1.1 request: {msg}"))

    # refusing

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        timeout = self.limits.header_timeout
        log.warning("closed a connection from %s: its request head took over %ss", self._peer(), timeout)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined head dribbled behind a running request
            return
        self._refuse(
            RequestTimeout(
                f"request line and headers not received within {timeout:g} s (server.header_timeout_seconds)"
            )
        )

    def _refuse(self, exc: ErrandError) -> None:
        """Answer `exc` and close: the write side at once, the read side after a linger."""
        self.waiting.pop(self, None)
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the running request's app writes nothing more
            self.cycle.message_event.set()
        self.transport.write(self._answer(exc))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = LINGER_BYTES
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)

    def _answer(self, exc: ErrandError) -> bytes:
        """The bytes of the error answer errand_error_response renders, with Connection: close."""
        response = errand_error_response(exc)
        lines = [STATUS_LINE[response.status_code]]
        for name, value in [*self.server_state.default_headers, *response.raw_headers]:
            lines.append(name + b": " + value + b"\r\n")
        lines.append(b"connection: close\r\n\r\n")
        return b"".join(lines) + bytes(response.body)

    def _drop(self, size: int) -> None:
        assert self._linger is not None
        self._linger -= size
        if self._linger <= 0:
            self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


def limited_protocol(limits: ConnectionLimits) -> type[LimitedHttpProtocol]:
    """The protocol class for one server: its limits and its own table of waiting connections."""

    class ServerHttpProtocol(LimitedHttpProtocol):
        pass

    ServerHttpProtocol.limits = limits
    ServerHttpProtocol.waiting = {}
    return ServerHttpProtocol


class ListeningServer(uvicorn.Server):
    """uvicorn, saying where it listens also when it serves a socket bound beforehand (it logs
    that only for an address it bound itself)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if sockets and self.started:
            where = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
            log = logging.getLogger("uvicorn.error")
            log.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", where, self.config.port)


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening address, bound before anything starts, so a port that is taken is one
    ConfigError naming it and `--port` rather than uvicorn's traceback after the workers ran."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is free
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise ConfigError(
            f"port {port} on {host} {why}: stop what holds it, or serve on another with --port"
        ) from None
    sock.set_inheritable(True)
    return sock

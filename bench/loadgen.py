"""A lean HTTP/1.1 load generator for the benchmarks (keep-alive, one request in flight per
connection), so the client is not what limits a measurement on a 2-core machine.

httpx costs the client ~0.5 ms of CPU per request, about as much as errand spends serving it;
this raw asyncio client costs a small fraction of that. It speaks just enough HTTP for POST /
GET with Content-Length bodies (what errand answers), and is used only against loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    body: bytes
    latency: float


@dataclass
class Conn:
    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> Reply:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        if body or method == "POST":
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        t0 = time.perf_counter()
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        data = await self.reader.readexactly(length) if length else b""
        return Reply(status, data, time.perf_counter() - t0)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def post_many(
    url: str,
    n: int,
    conns: int,
    path: str,
    make_body: Callable[[int], bytes],
    headers: dict[str, str],
) -> list[Reply]:
    """POST n bodies over `conns` keep-alive connections; replies in completion order."""
    hostport = url.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    replies: list[Reply] = []
    counter = iter(range(n))

    async def run_one() -> None:
        c = Conn(host, int(port), headers)
        try:
            for i in counter:
                try:
                    replies.append(await c.request("POST", path, make_body(i)))
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    replies.append(Reply(0, b"", 0.0))
                    await c.close()
                    c = Conn(host, int(port), headers)
        finally:
            await c.close()

    await asyncio.gather(*(run_one() for _ in range(conns)))
    return replies


async def post_for(
    url: str,
    seconds: float,
    conns: int,
    path: str | Callable[[int], str],
    make_body: Callable[[int], bytes],
    headers: dict[str, str],
) -> tuple[list[Reply], float]:
    """POST for `seconds` over `conns` keep-alive connections; (replies, wall seconds)."""
    hostport = url.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    replies: list[Reply] = []
    seq = iter(range(10**9))
    stop_at = time.perf_counter() + seconds

    async def run_one() -> None:
        c = Conn(host, int(port), headers)
        try:
            while time.perf_counter() < stop_at:
                i = next(seq)
                p = path(i) if callable(path) else path
                try:
                    replies.append(await c.request("POST", p, make_body(i)))
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    replies.append(Reply(0, b"", 0.0))
                    await c.close()
                    c = Conn(host, int(port), headers)
        finally:
            await c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(run_one() for _ in range(conns)))
    return replies, time.perf_counter() - t0

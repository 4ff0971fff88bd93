"""A real webhook receiver for end-to-end tests: an HTTP server on 127.0.0.1 in a thread.

It records every POST (raw body bytes, headers, arrival time) and answers from a script of
status codes (then 200 once the script is used up), so a test can make the first N attempts
fail. It runs in the test process, apart from the errand server under test, and is reached
over real loopback TCP like any receiver would be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One POST as received."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.time() on arrival
    answered: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Scripted receiver: `script` holds the status codes of the next answers (default 200)."""

    def __init__(self, script: Iterable[int] = ()) -> None:
        self.script = list(script)
        self.hits: list[Hit] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                code = receiver._next_code()
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(Hit(self.path, headers, body, time.time(), code))
                text = b"ok" if code < 300 else b"receiver says no"
                self.send_response(code)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="receiver", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _next_code(self) -> int:
        with self._cond:
            return self.script.pop(0) if self.script else 200

    def _record(self, hit: Hit) -> None:
        with self._cond:
            self.hits.append(hit)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Hit]:
        """The first `count` hits, once they arrived (fails the test after `timeout` s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.hits) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"receiver got {len(self.hits)} of {count} POSTs in {timeout}s"
                self._cond.wait(remaining)
            return list(self.hits[:count])

    def quiet_for(self, seconds: float) -> list[Hit]:
        """Every hit after `seconds` more of waiting (to prove nothing else arrives)."""
        time.sleep(seconds)
        with self._cond:
            return list(self.hits)


@contextmanager
def receiving(script: Iterable[int] = ()) -> Iterator[Receiver]:
    """A started receiver, stopped afterwards."""
    receiver = Receiver(script).start()
    try:
        yield receiver
    finally:
        receiver.stop()

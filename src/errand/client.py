"""The Python SDK: a shared base that builds calls and parses answers, and twin clients that send.

`_BaseClient` does everything that is not I/O: URLs (with or without a formation id), headers,
bodies, parsing status documents into frozen values, and mapping the error envelope
`{"error": {"code", "message", "details"}}` back to the `errand.errors` class the server raised.
`Client` (httpx.Client) and `AsyncClient` (httpx.AsyncClient) only send. Transport failures are
translated once, in `_transport_errors()`, to `ServiceUnavailable` (transient), so callers catch
one tree. `wait()` long-polls `GET /v1/requests/{id}?wait=N`; it never spins.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, Unpack
from urllib.parse import quote

import httpx

from errand._sdk_values import ChatOptions, RequestHandle, RequestList, RequestStatus, TriggerOptions
from errand.errors import (
    BY_CODE,
    Conflict,
    ErrandError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestExpired,
    ServiceUnavailable,
    Unauthorized,
)
from errand.models import Progress

__all__ = [
    "AsyncClient",
    "ChatOptions",
    "Client",
    "Formation",
    "ProgressCallback",
    "RequestHandle",
    "RequestList",
    "RequestStatus",
    "TriggerOptions",
]

DEFAULT_URL: Final = "http://localhost:8001"
DEFAULT_TIMEOUT: Final = 30.0
MAX_LONG_POLL: Final = 30.0
"""Longest single `?wait=` the SDK asks for; the server caps it too (server.max_wait_seconds)."""
PROGRESS_POLL: Final = 1.0
"""With an on_progress callback, `?wait=` returns early only for terminal states, so the SDK
re-reads at this pace to see progress move."""
MIN_CYCLE: Final = 0.5
"""Floor on one wait cycle, so a server that ignores `?wait=` still is not hammered."""

ProgressCallback = Callable[[Progress], object]
"""Called with the new Progress each time it changes; an async client awaits an awaitable result."""

_HTTP_FALLBACK: Final[dict[int, type[ErrandError]]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    410: RequestExpired,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}
"""Used only when an error answer carries no errand envelope (e.g. from a proxy)."""


@dataclass(frozen=True, slots=True)
class _Call:
    """One HTTP call, fully built, not yet sent."""

    method: str
    path: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    timeout: float | None = None


def _error_from_response(status_code: int, body: bytes) -> ErrandError:
    """The errand error an HTTP error answer stands for, with `.status_code` and `.details`.

    The class comes from the envelope's code (BY_CODE); an unknown code gives ErrandError with
    `.code` set to the wire code; an answer without an envelope (a proxy's 502) is classed by
    its HTTP status.
    """
    code, message, details = None, "", None
    try:
        envelope = json.loads(body).get("error")
    except (ValueError, AttributeError):
        envelope = None
    if isinstance(envelope, Mapping):
        code, message, details = (
            envelope.get("code"),
            str(envelope.get("message") or ""),
            envelope.get("details"),
        )
    cls = BY_CODE.get(str(code)) if code else _HTTP_FALLBACK.get(status_code)
    if not message:
        message = body.decode("utf-8", "replace")[:500].strip() or f"HTTP {status_code}"
    exc = (cls or ErrandError)(message, details=details)
    # errors.py knows no HTTP, so the status (and an unknown wire code) live on the instance
    vars(exc)["status_code"] = status_code
    if code and cls is None:
        vars(exc)["code"] = str(code)
    return exc


@contextmanager
def _transport_errors(base_url: str) -> Iterator[None]:
    """Translate httpx transport failures (refused, reset, timed out) into ServiceUnavailable."""
    try:
        yield
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"cannot reach errand at {base_url}: {exc or type(exc).__name__}") from exc


class _BaseClient:
    """Everything but I/O: call building, answer parsing, error mapping, the wait schedule."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_key: str | None = None,
        admin_key: str | None = None,
        user_id: str | None = None,
        formation_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.formation_id = formation_id
        self.timeout = timeout
        self._prefix = f"/api/{quote(formation_id, safe='')}/v1" if formation_id else "/v1"
        headers = {"Accept": "application/json", "User-Agent": "errand-python"}
        if client_key:
            headers["X-Muxi-Client-Key"] = client_key
        if admin_key:
            headers["X-Muxi-Admin-Key"] = admin_key
        if user_id is not None:
            headers["X-Muxi-User-Id"] = user_id
        self.headers: dict[str, str] = headers

    # -- building ---------------------------------------------------------------------------

    def url_for(self, *parts: str) -> str:
        """The absolute URL of an API path: `url_for("requests", rid)` -> .../v1/requests/rid."""
        return self.base_url + self._path(*parts)

    def _path(self, *parts: str) -> str:
        return "/".join([self._prefix, *(quote(p, safe="") for p in parts)])

    @staticmethod
    def _idem(idempotency_key: str | None) -> dict[str, str] | None:
        return {"X-Muxi-Idempotency-Key": idempotency_key} if idempotency_key else None

    def _chat_call(self, message: str, mode: str, options: ChatOptions) -> _Call:
        body: dict[str, Any] = {"message": message, "mode": str(mode)}
        body.update({k: v for k, v in options.items() if v is not None and k != "idempotency_key"})
        if isinstance(body.get("metadata"), Mapping):
            body["metadata"] = dict(body["metadata"])
        return _Call(
            "POST", self._path("chat"), json=body, headers=self._idem(options.get("idempotency_key"))
        )

    def _get_call(self, request_id: str, wait: float | None = None) -> _Call:
        if not wait or wait <= 0:
            return _Call("GET", self._path("requests", request_id))
        # the server holds the answer up to `wait` seconds: the read timeout must outlast it
        return _Call(
            "GET",
            self._path("requests", request_id),
            params={"wait": f"{wait:.3f}".rstrip("0").rstrip(".")},
            timeout=wait + self.timeout,
        )

    def _list_call(self, status: str | None, limit: int, cursor: str | None) -> _Call:
        params = {"limit": str(limit)}
        if status:
            params["status"] = str(status)
        if cursor:
            params["cursor"] = cursor
        return _Call("GET", self._path("requests"), params=params)

    def _cancel_call(self, request_id: str) -> _Call:
        return _Call("DELETE", self._path("requests", request_id))

    def _trigger_call(self, name: str, data: Any, use_async: bool | None, options: TriggerOptions) -> _Call:
        body: dict[str, Any] = {"data": data}
        if use_async is not None:  # None: the trigger's front matter decides (else async)
            body["use_async"] = use_async
        body.update({k: v for k, v in options.items() if v is not None and k != "idempotency_key"})
        return _Call(
            "POST",
            self._path("triggers", name),
            json=body,
            headers=self._idem(options.get("idempotency_key")),
        )

    @staticmethod
    def _health_call() -> _Call:
        return _Call("GET", "/health")

    def _request_kwargs(self, call: _Call) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": call.params, "json": call.json, "headers": call.headers}
        if call.timeout is not None:
            kwargs["timeout"] = call.timeout
        return kwargs

    # -- parsing ----------------------------------------------------------------------------

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        """The JSON body of a 2xx answer; any other answer raises its errand error."""
        if response.is_success:
            return response.json() if response.content else {}
        raise _error_from_response(response.status_code, response.content)

    @classmethod
    def _status(cls, response: httpx.Response) -> RequestStatus:
        return RequestStatus.from_document(cls._decode(response))

    @classmethod
    def _handle(cls, response: httpx.Response) -> RequestHandle:
        return RequestHandle.from_document(cls._decode(response))

    @classmethod
    def _handle_or_status(cls, response: httpx.Response) -> RequestHandle | RequestStatus:
        doc = cls._decode(response)
        if response.status_code == 202:
            return RequestHandle.from_document(doc)
        return RequestStatus.from_document(doc)

    @classmethod
    def _list(cls, response: httpx.Response) -> RequestList:
        return RequestList.from_document(cls._decode(response))

    @classmethod
    def _dict(cls, response: httpx.Response) -> dict[str, Any]:
        doc = cls._decode(response)
        return dict(doc) if isinstance(doc, Mapping) else {"value": doc}


class _WaitPlan:
    """The wait schedule both twins follow: deadline, long-poll lengths, progress news."""

    def __init__(
        self, request_id: str, timeout: float, poll: float | None, watching: bool, now: float
    ) -> None:
        self.request_id = request_id
        self.timeout = timeout
        self.deadline = now + timeout
        self.pace = poll if poll is not None else (PROGRESS_POLL if watching else MAX_LONG_POLL)
        self.last: Progress | None = None

    def next_cycle(self, now: float) -> float:
        """How long the next long-poll may hold; TimeoutError once the deadline has passed."""
        remaining = self.deadline - now
        if remaining <= 0:
            raise TimeoutError(f"request {self.request_id} not finished after {self.timeout:g}s")
        return max(0.001, min(remaining, self.pace, MAX_LONG_POLL))

    def news(self, status: RequestStatus) -> Progress | None:
        """The progress to report, if it changed since the last report."""
        if status.progress is None or status.progress == self.last:
            return None
        self.last = status.progress
        return status.progress

    @staticmethod
    def rest(cycle: float, started: float, now: float) -> float:
        """Pause before the next cycle when the server answered early (or ignores `?wait=`)."""
        return max(0.0, min(cycle, MIN_CYCLE) - (now - started))


class Client(_BaseClient):
    """Synchronous errand client. Use it as a context manager, or call `close()`.

    >>> with Client("http://localhost:8001", client_key="...", user_id="u1") as c:
    ...     st = c.wait(c.chat_async("Complex task").id, on_progress=print)
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_key: str | None = None,
        admin_key: str | None = None,
        user_id: str | None = None,
        formation_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            client_key=client_key,
            admin_key=admin_key,
            user_id=user_id,
            formation_id=formation_id,
            timeout=timeout,
        )
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    def _send(self, call: _Call) -> httpx.Response:
        with _transport_errors(self.base_url):
            return self._http.request(call.method, call.path, **self._request_kwargs(call))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def chat(self, message: str, *, mode: str | None = None, **options: Unpack[ChatOptions]) -> RequestStatus:
        """A chat turn answered in the call (mode "sync" unless given).

        If the work outlives the server's sync wait, the server answers 202 and keeps working:
        the returned status is then pending or processing; `wait(status.id)` gets the result.
        """
        return self._status(self._send(self._chat_call(message, mode or "sync", options)))

    def chat_async(
        self, message: str, *, mode: str = "async", **options: Unpack[ChatOptions]
    ) -> RequestHandle:
        """Queue a chat turn and return at once with a handle (`.id`, `.poll_url`)."""
        return self._handle(self._send(self._chat_call(message, mode, options)))

    def get_request(self, request_id: str, *, wait: float | None = None) -> RequestStatus:
        """The request's status now, or after up to `wait` seconds if it is not yet terminal."""
        return self._status(self._send(self._get_call(request_id, wait)))

    def wait(
        self,
        request_id: str,
        timeout: float = 600.0,
        on_progress: ProgressCallback | None = None,
        poll: float | None = None,
    ) -> RequestStatus:
        """Block until the request is terminal (long-poll, no busy loop); TimeoutError after `timeout`.

        `poll` caps how long each long-poll holds (default 30 s, or 1 s with on_progress).
        """
        plan = _WaitPlan(request_id, timeout, poll, on_progress is not None, time.monotonic())
        while True:
            started = time.monotonic()
            cycle = plan.next_cycle(started)
            status = self.get_request(request_id, wait=cycle)
            news = plan.news(status)
            if news is not None and on_progress is not None:
                on_progress(news)
            if status.is_complete:
                return status
            time.sleep(plan.rest(cycle, started, time.monotonic()))

    def cancel(self, request_id: str) -> dict[str, Any]:
        """Cancel: `{"request_id", "status": "cancelled", "cancellation"}`; Conflict if it already ended."""
        return self._dict(self._send(self._cancel_call(request_id)))

    def list_requests(
        self, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> RequestList:
        """The caller's requests, newest first (admin: everyone's)."""
        return self._list(self._send(self._list_call(status, limit, cursor)))

    def fire_trigger(
        self, name: str, data: Any, *, use_async: bool | None = True, **options: Unpack[TriggerOptions]
    ) -> RequestHandle | RequestStatus:
        """Fire triggers/NAME.md with `data`: a RequestHandle if queued (202), else the final status.

        `use_async=None` leaves the choice to the trigger's front matter (else async).
        """
        return self._handle_or_status(self._send(self._trigger_call(name, data, use_async, options)))

    def health(self) -> dict[str, Any]:
        return self._dict(self._send(self._health_call()))


class AsyncClient(_BaseClient):
    """Asynchronous twin of Client: the same methods, awaited. Use `async with`, or `aclose()`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_key: str | None = None,
        admin_key: str | None = None,
        user_id: str | None = None,
        formation_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            client_key=client_key,
            admin_key=admin_key,
            user_id=user_id,
            formation_id=formation_id,
            timeout=timeout,
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    async def _send(self, call: _Call) -> httpx.Response:
        with _transport_errors(self.base_url):
            return await self._http.request(call.method, call.path, **self._request_kwargs(call))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def chat(
        self, message: str, *, mode: str | None = None, **options: Unpack[ChatOptions]
    ) -> RequestStatus:
        """As Client.chat: a pending status comes back if the server answered 202."""
        return self._status(await self._send(self._chat_call(message, mode or "sync", options)))

    async def chat_async(
        self, message: str, *, mode: str = "async", **options: Unpack[ChatOptions]
    ) -> RequestHandle:
        return self._handle(await self._send(self._chat_call(message, mode, options)))

    async def get_request(self, request_id: str, *, wait: float | None = None) -> RequestStatus:
        return self._status(await self._send(self._get_call(request_id, wait)))

    async def wait(
        self,
        request_id: str,
        timeout: float = 600.0,
        on_progress: ProgressCallback | None = None,
        poll: float | None = None,
    ) -> RequestStatus:
        """As Client.wait; an awaitable returned by on_progress is awaited."""
        loop = asyncio.get_running_loop()
        plan = _WaitPlan(request_id, timeout, poll, on_progress is not None, loop.time())
        while True:
            started = loop.time()
            cycle = plan.next_cycle(started)
            status = await self.get_request(request_id, wait=cycle)
            news = plan.news(status)
            if news is not None and on_progress is not None:
                outcome = on_progress(news)
                if inspect.isawaitable(outcome):
                    await outcome
            if status.is_complete:
                return status
            await asyncio.sleep(plan.rest(cycle, started, loop.time()))

    async def cancel(self, request_id: str) -> dict[str, Any]:
        return self._dict(await self._send(self._cancel_call(request_id)))

    async def list_requests(
        self, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> RequestList:
        return self._list(await self._send(self._list_call(status, limit, cursor)))

    async def fire_trigger(
        self, name: str, data: Any, *, use_async: bool | None = True, **options: Unpack[TriggerOptions]
    ) -> RequestHandle | RequestStatus:
        return self._handle_or_status(await self._send(self._trigger_call(name, data, use_async, options)))

    async def health(self) -> dict[str, Any]:
        return self._dict(await self._send(self._health_call()))


Formation = Client
"""MUXI's name for the client (the seed's `formation.chat_async(...)`)."""

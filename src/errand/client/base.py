"""The SDK's shared base: builds every call and parses every answer; the twins only send.

`_BaseClient` is the constructor both twins share (each only opens its own httpx client, in
`_open`); it holds URLs (with or without a formation id), headers and bodies, and turns answers
into frozen values (client/values.py) or errand errors (client/error_map.py). `_WaitPlan` is the
wait schedule both twins follow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import httpx

from errand.client.error_map import _error_from_response
from errand.client.stream import StreamPlan
from errand.client.values import (
    AgentInfo,
    AttemptInfo,
    CancelResult,
    ChatOptions,
    DeliveryInfo,
    RequestHandle,
    RequestList,
    RequestStatus,
    TriggerOptions,
)
from errand.errors import ErrandError, InputNotOutstanding
from errand.models import Progress
from errand.version import __version__

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_URL", "STREAM_READ_TIMEOUT", "ProgressCallback"]
# _BaseClient, _Call and _WaitPlan are the twins' shared internals, not part of the SDK surface.

DEFAULT_URL: Final = "http://127.0.0.1:8001"
"""Where `errand serve` listens by default; the CLI's default `--url` too."""
DEFAULT_TIMEOUT: Final = 30.0
MAX_LONG_POLL: Final = 30.0
"""Longest single `?wait=` the SDK asks for; the server caps it too (server.max_wait_seconds)."""
PROGRESS_POLL: Final = 1.0
"""With an on_progress callback, `?wait=` returns early only for terminal states, so the SDK
re-reads at this pace to see progress move."""
STREAM_READ_TIMEOUT: Final = 60.0
"""An event stream silent this long is taken as dropped and resumed: the server sends a
keepalive every `server.sse_heartbeat_seconds` (15 s by default)."""
MIN_CYCLE: Final = 0.5
"""Floor on one wait cycle, so a server that ignores `?wait=` still is not hammered."""

ProgressCallback = Callable[[Progress], object]
"""Called with the new Progress each time it changes; an async client awaits an awaitable result."""

TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
"""The httpx transport a twin accepts (sync or async)."""


@dataclass(frozen=True, slots=True)
class _Call:
    """One HTTP call, fully built, not yet sent."""

    method: str
    path: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    timeout: float | httpx.Timeout | None = None


class _BaseClient(Generic[TransportT]):
    """Everything but I/O: call building, answer parsing, error mapping, the wait schedule; and
    the one constructor of both twins, each of which opens its own httpx client (`_open`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_key: str | None = None,
        admin_key: str | None = None,
        user_id: str | None = None,
        formation_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: TransportT | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.formation_id = formation_id
        self.timeout = timeout
        self._prefix = f"/api/{quote(formation_id, safe='')}/v1" if formation_id else "/v1"
        headers = {"Accept": "application/json", "User-Agent": f"errand-python/{__version__}"}
        if client_key:
            headers["X-Muxi-Client-Key"] = client_key
        if admin_key:
            headers["X-Muxi-Admin-Key"] = admin_key
        if user_id is not None:
            headers["X-Muxi-User-Id"] = user_id
        self.headers: dict[str, str] = headers
        self._open(transport)

    def _open(self, transport: TransportT | None) -> None:
        """Open the twin's httpx client over these settings; the base alone sends nothing."""

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

    def _attempts_call(self, request_id: str) -> _Call:
        return _Call("GET", self._path("requests", request_id, "attempts"))

    def _respond_call(self, request_id: str, input_id: str, value: Any) -> _Call:
        return _Call(
            "POST", self._path("requests", request_id, "input"), json={"input_id": input_id, "value": value}
        )

    @staticmethod
    def _outstanding(status: RequestStatus) -> str:
        """The id of the question `status` waits on; InputNotOutstanding when it waits on none."""
        if status.input_request is None or not status.needs_input:
            raise InputNotOutstanding(
                f"request {status.id!r} is {status.status.value}, not waiting for input",
                details={"request_id": status.id, "status": status.status.value},
            )
        return status.input_request.id

    def _cancel_call(self, request_id: str) -> _Call:
        return _Call("DELETE", self._path("requests", request_id))

    def _events_call(self, plan: StreamPlan) -> _Call:
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, STREAM_READ_TIMEOUT))
        return _Call(
            "GET",
            self._path("requests", plan.request_id, "events"),
            params=None if plan.follow else {"follow": "false"},
            headers=plan.headers(),
            timeout=timeout,
        )

    def _deliveries_call(self, request_id: str) -> _Call:
        return _Call("GET", self._path("requests", request_id, "deliveries"))

    def _redeliver_call(self, request_id: str) -> _Call:
        return _Call("POST", self._path("requests", request_id, "redeliver"))

    def _agents_call(self) -> _Call:
        return _Call("GET", self._path("agents"))

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

    def _schedule_call(self, method: str, *parts: str, body: dict[str, Any] | None = None) -> _Call:
        """A call on /v1/schedules[/ID[/run]] (admin key needed)."""
        return _Call(method, self._path("schedules", *parts), json=body)

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
    def _attempts(cls, response: httpx.Response) -> tuple[AttemptInfo, ...]:
        return AttemptInfo.many(cls._decode(response))

    @classmethod
    def _cancelled(cls, response: httpx.Response) -> CancelResult:
        return CancelResult.from_document(cls._decode(response))

    @classmethod
    def _deliveries(cls, response: httpx.Response) -> tuple[DeliveryInfo, ...]:
        return DeliveryInfo.many(cls._decode(response))

    @classmethod
    def _redelivered(cls, response: httpx.Response) -> DeliveryInfo:
        return DeliveryInfo.from_document(cls._decode(response).get("delivery") or {})

    @classmethod
    def _agents(cls, response: httpx.Response) -> tuple[AgentInfo, ...]:
        return AgentInfo.many(cls._decode(response))

    @staticmethod
    def _stream_error(response: httpx.Response) -> ErrandError | None:
        """The error a stream's answer stands for (its body read by the caller), else None."""
        if response.is_success:
            return None
        return _error_from_response(response.status_code, response.content)

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

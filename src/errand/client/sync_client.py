"""`Client`: the synchronous SDK client over httpx.Client (and `Formation`, MUXI's name for it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self, Unpack

import httpx
from httpx_sse import EventSource, SSEError

from errand.client.base import ProgressCallback, _BaseClient, _Call, _WaitPlan
from errand.client.error_map import _transport_errors
from errand.client.stream import DEFAULT_RECONNECTS, RECONNECT_BACKOFF, StreamEvent, StreamPlan
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
from errand.errors import ErrandError, ServiceUnavailable
from errand.models import LIST_LIMIT_DEFAULT

__all__ = ["Client", "Formation"]


class Client(_BaseClient[httpx.BaseTransport]):
    """Synchronous errand client. Use it as a context manager, or call `close()`.

    >>> with Client("http://127.0.0.1:8001", client_key="demo-client-key") as c:
    ...     st = c.wait(c.chat_async("Complex task").id, on_progress=print)

    `user_id` is the end user the requests belong to (the X-Muxi-User-Id header). A client key
    sees only its own user's requests; None leaves it to the server, which uses
    `errand.models.DEFAULT_USER_ID` ("0"), as the CLI does without `--user` / ERRAND_USER_ID.
    An admin key sees every user's requests.
    """

    _http: httpx.Client

    def _open(self, transport: httpx.BaseTransport | None) -> None:
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, transport=transport
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
        """Block until the request is terminal or waits for input (`status.needs_input`: answer
        with `respond()`, then wait again); long-polls, no busy loop; TimeoutError after `timeout`.

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
            if status.is_complete or status.needs_input:
                return status
            time.sleep(plan.rest(cycle, started, time.monotonic()))

    def attempts(self, request_id: str) -> tuple[AttemptInfo, ...]:
        """Every attempt of the request, oldest first: outcome, error (and, for an admin key,
        the traceback)."""
        return self._attempts(self._send(self._attempts_call(request_id)))

    def respond(self, request_id: str, value: Any, input_id: str | None = None) -> dict[str, Any]:
        """Answer the question the request waits on (`input_id` default: the outstanding one,
        read first): `{"request_id", "input_id", "status", "accepted"}`. The same answer again is
        accepted (`accepted` False); InvalidRequest if the question's schema refuses `value`;
        InputAlreadyAnswered / InputNotOutstanding (Conflict) otherwise."""
        if input_id is None:
            input_id = self._outstanding(self.get_request(request_id))
        return self._dict(self._send(self._respond_call(request_id, input_id, value)))

    def cancel(self, request_id: str) -> CancelResult:
        """Cancel a pending or running request (cancelling it again answers the same); Conflict
        if it already completed or failed."""
        return self._cancelled(self._send(self._cancel_call(request_id)))

    def events(
        self,
        request_id: str,
        after: int | None = None,
        *,
        follow: bool = True,
        reconnects: int = DEFAULT_RECONNECTS,
    ) -> Iterator[StreamEvent]:
        """The request's events as they happen (SSE), from the first (or the one after `after`)
        to the terminal event. A dropped connection is resumed with Last-Event-ID, so no event is
        lost or repeated; after `reconnects` drops in a row without news, ServiceUnavailable.
        `follow=False`: only the events that had happened when asked, then the iterator ends."""
        plan = StreamPlan(request_id, after, reconnects, RECONNECT_BACKOFF, follow=follow)
        while True:
            cause: Exception | None = None
            try:
                with _transport_errors(self.base_url):
                    yield from self._stream_once(plan)
            except ServiceUnavailable as exc:  # refused, reset, cut mid-stream, timed out, 503
                cause = exc
            if plan.needs_check(cause):
                try:
                    if (self.get_request(request_id)).is_complete:
                        plan.ended()
                        continue  # the rest of the log as a replay, at once
                except ServiceUnavailable as exc:
                    cause = exc
            if plan.finished(cause):
                return
            time.sleep(plan.dropped(cause))

    def _stream_once(self, plan: StreamPlan) -> Iterator[StreamEvent]:
        call = self._events_call(plan)
        with self._http.stream(call.method, call.path, **self._request_kwargs(call)) as response:
            if not response.is_success:
                response.read()
                raise self._stream_error(response) or ServiceUnavailable("no event stream")
            try:
                for sse in EventSource(response).iter_sse():
                    event = plan.accept(sse)
                    if event is not None:
                        yield event
                        if plan.done:
                            return
            except SSEError as exc:  # a 200 that is not an event stream (a proxy's page)
                raise ErrandError(f"not an event stream: {exc}") from None

    def deliveries(self, request_id: str) -> tuple[DeliveryInfo, ...]:
        """Every webhook delivery of the request (the first, then redeliveries) with every attempt."""
        return self._deliveries(self._send(self._deliveries_call(request_id)))

    def redeliver(self, request_id: str) -> DeliveryInfo:
        """Send an ended request's webhook again, as a new delivery with a new webhook-id
        (admin key; Conflict if it has not ended or has no webhook URL)."""
        return self._redelivered(self._send(self._redeliver_call(request_id)))

    def agents(self) -> tuple[AgentInfo, ...]:
        """The formation's agents, in configuration order."""
        return self._agents(self._send(self._agents_call()))

    def list_requests(
        self, status: str | None = None, limit: int = LIST_LIMIT_DEFAULT, cursor: str | None = None
    ) -> RequestList:
        """The caller's requests, newest first (admin: everyone's); `limit` at most
        `errand.models.LIST_LIMIT_MAX` (200) per page, then follow `next_cursor`."""
        return self._list(self._send(self._list_call(status, limit, cursor)))

    def fire_trigger(
        self, name: str, data: Any, *, use_async: bool | None = True, **options: Unpack[TriggerOptions]
    ) -> RequestHandle | RequestStatus:
        """Fire triggers/NAME.md with `data`: a RequestHandle if queued (202), else the final status.

        `use_async=None` leaves the choice to the trigger's front matter (else async).
        """
        return self._handle_or_status(self._send(self._trigger_call(name, data, use_async, options)))

    # -- schedules (admin key) ----------------------------------------------------------------
    def list_schedules(self) -> list[dict[str, Any]]:
        """Every schedule, by name, each with its `next_fire_at`."""
        return list(self._dict(self._send(self._schedule_call("GET")))["schedules"])

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        """One schedule, by id or name."""
        return self._dict(self._send(self._schedule_call("GET", schedule_id)))

    def create_schedule(self, **spec: Any) -> dict[str, Any]:
        """A new schedule: name, cron or every, trigger + data or message (+ agent), overlap..."""
        return self._dict(self._send(self._schedule_call("POST", body=spec)))

    def update_schedule(self, schedule_id: str, **changes: Any) -> dict[str, Any]:
        """Change the fields given (e.g. `enabled=False` pauses it)."""
        return self._dict(self._send(self._schedule_call("PATCH", schedule_id, body=changes)))

    def delete_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._dict(self._send(self._schedule_call("DELETE", schedule_id)))

    def run_schedule(self, schedule_id: str) -> RequestHandle:
        """Fire the schedule now: the handle of its request."""
        return self._handle(self._send(self._schedule_call("POST", schedule_id, "run")))

    def health(self) -> dict[str, Any]:
        return self._dict(self._send(self._health_call()))


Formation = Client
"""MUXI's name for the client (the seed's `formation.chat_async(...)`)."""

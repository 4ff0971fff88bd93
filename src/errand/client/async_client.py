"""`AsyncClient`: the asynchronous twin of Client, over httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
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

__all__ = ["AsyncClient"]


class AsyncClient(_BaseClient[httpx.AsyncBaseTransport]):
    """Asynchronous twin of Client: the same methods, awaited. Use `async with`, or `aclose()`."""

    _http: httpx.AsyncClient

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, transport=transport
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
            if status.is_complete or status.needs_input:
                return status
            await asyncio.sleep(plan.rest(cycle, started, loop.time()))

    async def attempts(self, request_id: str) -> tuple[AttemptInfo, ...]:
        """Every attempt of the request, oldest first (the traceback for an admin key only)."""
        return self._attempts(await self._send(self._attempts_call(request_id)))

    async def respond(self, request_id: str, value: Any, input_id: str | None = None) -> dict[str, Any]:
        """As Client.respond."""
        if input_id is None:
            input_id = self._outstanding(await self.get_request(request_id))
        return self._dict(await self._send(self._respond_call(request_id, input_id, value)))

    async def cancel(self, request_id: str) -> CancelResult:
        return self._cancelled(await self._send(self._cancel_call(request_id)))

    async def events(
        self,
        request_id: str,
        after: int | None = None,
        *,
        follow: bool = True,
        reconnects: int = DEFAULT_RECONNECTS,
    ) -> AsyncIterator[StreamEvent]:
        """As Client.events: `async for event in client.events(id)`, resumed after a drop."""
        plan = StreamPlan(request_id, after, reconnects, RECONNECT_BACKOFF, follow=follow)
        while True:
            cause: Exception | None = None
            try:
                with _transport_errors(self.base_url):
                    async for event in self._stream_once(plan):
                        yield event
            except ServiceUnavailable as exc:
                cause = exc
            if plan.needs_check(cause):
                try:
                    if (await self.get_request(request_id)).is_complete:
                        plan.ended()
                        continue  # the rest of the log as a replay, at once
                except ServiceUnavailable as exc:
                    cause = exc
            if plan.finished(cause):
                return
            await asyncio.sleep(plan.dropped(cause))

    async def _stream_once(self, plan: StreamPlan) -> AsyncIterator[StreamEvent]:
        call = self._events_call(plan)
        async with self._http.stream(call.method, call.path, **self._request_kwargs(call)) as response:
            if not response.is_success:
                await response.aread()
                raise self._stream_error(response) or ServiceUnavailable("no event stream")
            try:
                async for sse in EventSource(response).aiter_sse():
                    event = plan.accept(sse)
                    if event is not None:
                        yield event
                        if plan.done:
                            return
            except SSEError as exc:
                raise ErrandError(f"not an event stream: {exc}") from None

    async def deliveries(self, request_id: str) -> tuple[DeliveryInfo, ...]:
        return self._deliveries(await self._send(self._deliveries_call(request_id)))

    async def redeliver(self, request_id: str) -> DeliveryInfo:
        return self._redelivered(await self._send(self._redeliver_call(request_id)))

    async def agents(self) -> tuple[AgentInfo, ...]:
        return self._agents(await self._send(self._agents_call()))

    async def list_requests(
        self, status: str | None = None, limit: int = LIST_LIMIT_DEFAULT, cursor: str | None = None
    ) -> RequestList:
        return self._list(await self._send(self._list_call(status, limit, cursor)))

    async def fire_trigger(
        self, name: str, data: Any, *, use_async: bool | None = True, **options: Unpack[TriggerOptions]
    ) -> RequestHandle | RequestStatus:
        return self._handle_or_status(await self._send(self._trigger_call(name, data, use_async, options)))

    # -- schedules (admin key) ----------------------------------------------------------------
    async def list_schedules(self) -> list[dict[str, Any]]:
        """Every schedule, by name, each with its `next_fire_at`."""
        return list(self._dict(await self._send(self._schedule_call("GET")))["schedules"])

    async def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        """One schedule, by id or name."""
        return self._dict(await self._send(self._schedule_call("GET", schedule_id)))

    async def create_schedule(self, **spec: Any) -> dict[str, Any]:
        """A new schedule: name, cron or every, trigger + data or message (+ agent), overlap..."""
        return self._dict(await self._send(self._schedule_call("POST", body=spec)))

    async def update_schedule(self, schedule_id: str, **changes: Any) -> dict[str, Any]:
        """Change the fields given (e.g. `enabled=False` pauses it)."""
        return self._dict(await self._send(self._schedule_call("PATCH", schedule_id, body=changes)))

    async def delete_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._dict(await self._send(self._schedule_call("DELETE", schedule_id)))

    async def run_schedule(self, schedule_id: str) -> RequestHandle:
        """Fire the schedule now: the handle of its request."""
        return self._handle(await self._send(self._schedule_call("POST", schedule_id, "run")))

    async def health(self) -> dict[str, Any]:
        return self._dict(await self._send(self._health_call()))

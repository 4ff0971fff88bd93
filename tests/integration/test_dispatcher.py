"""The webhook dispatcher against the real SQLite store and a real HTTP receiver on 127.0.0.1.

The receiver is a tiny asyncio HTTP/1.1 server in the test's loop, scripted per request:
answer 500, answer too slowly (a timeout), 302, or 200. "Connection refused" is real too: the
receiver stops listening and comes back on the same port. Time is a ManualClock started at
the real time (so the Standard Webhooks library's own clock check passes); retries are
scheduled in that clock and the test moves it, so nothing sleeps for a backoff.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY
from standardwebhooks import Webhook

from errand.clock import ManualClock, new_request_id
from errand.delivery.dispatcher import Dispatcher
from errand.delivery.settings import DispatcherSettings
from errand.models import Claim, Delivery, ErrorInfo, NewRequest, Result, Status
from errand.store import open_store
from errand.store.base import Store
from errand.webhooks import verify

SECRET = "webhook-secret-for-tests"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None


@dataclass
class Receiver:
    """A scripted HTTP receiver: each request takes the next action (default 200)."""

    script: list[int | str] = field(default_factory=list)
    slow_seconds: float = 3.0
    pause: float = 0.0  # every answer waits this long (to observe concurrency)
    concurrent: int = 0
    max_concurrent: int = 0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines if line)
        length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
        body = await reader.readexactly(length)
        got = Received(request_line.split(" ")[1], headers, body)
        self.received.append(got)
        self.arrived.set()
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await self._answer(got, writer)
        finally:
            self.concurrent -= 1

    async def _answer(self, got: Received, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.pause)
        action = self.script.pop(0) if self.script else 200
        if action == "slow":
            await asyncio.sleep(self.slow_seconds)
            action = 200
        assert isinstance(action, int)
        got.answered = action
        extra = "Location: /elsewhere\r\n" if action == 302 else ""
        text = b"receiver says no" if action >= 300 else b"ok"
        writer.write(
            f"HTTP/1.1 {action} X\r\n{extra}Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode()
            + text
        )
        await writer.drain()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[Store]:
    s = await open_store(sqlite_url, clock=clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def settings(**overrides: Any) -> DispatcherSettings:
    base: dict[str, Any] = {
        "formation_id": "lab",
        "secret": SECRET,
        "retries": 3,
        "timeout": 0.5,
        "allow_hosts": ("127.0.0.1",),
        "initial_delay": 0.01,
        "max_delay": 0.05,
        "jitter": 0.0,
        "lease_seconds": 5.0,
        "poll_interval": 0.05,
    }
    return DispatcherSettings(**{**base, **overrides})


async def finished_request(
    store: Store, url: str, *, status: Status = Status.COMPLETED, text: str = "Café ☕ done"
) -> str:
    """Submit a request with a webhook URL, claim it and end it: store.finish writes the outbox row."""
    new = NewRequest(id=new_request_id(), owner="owner-fp", user_id="u1", message="hi", webhook_url=url)
    req, created = await store.submit(new)
    assert created
    claims: list[Claim] = await store.claim("worker-1", 1, 30.0)
    (claim,) = claims
    if status is Status.COMPLETED:
        await store.finish(req.id, claim.attempt, status, result=Result(text, "echo"))
    else:
        await store.finish(req.id, claim.attempt, status, error=ErrorInfo("PermanentError", "it broke"))
    return req.id


async def drain(dispatcher: Dispatcher, clock: ManualClock) -> None:
    """Run until no retry is left, moving the manual clock to each scheduled retry."""
    while (due := await dispatcher.run_until_idle()) is not None:
        clock.advance(max(0.0, due - clock.now()) + 0.001)


async def next_retry(dispatcher: Dispatcher, clock: ManualClock) -> float | None:
    """One round: deliver what is due, then move the clock to the next retry (if any)."""
    due = await dispatcher.run_until_idle()
    if due is not None:
        clock.advance(max(0.0, due - clock.now()) + 0.001)
    return due


def only_delivery(deliveries: list[Delivery]) -> Delivery:
    assert len(deliveries) == 1
    return deliveries[0]


def metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("errand_webhook_deliveries_total", {"outcome": outcome}) or 0.0


def assert_signed(got: Received) -> None:
    """All three ways a receiver may check a delivery accept the exact bytes received."""
    assert verify(got.body, got.headers, SECRET)
    assert Webhook(SECRET.encode()).verify(got.body, got.headers, json_parse=False) is None
    t = got.headers["X-Muxi-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Muxi-Signature"] == f"t={t},v1={expected}"
    std = hmac.new(
        SECRET.encode(), f"{got.headers['webhook-id']}.{t}.".encode() + got.body, hashlib.sha256
    ).digest()
    assert got.headers["webhook-signature"] == "v1," + base64.b64encode(std).decode()


async def test_failures_then_success_delivers_once_with_every_attempt_recorded(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    request_id = await finished_request(store, receiver.url)
    receiver.script = [500, "slow"]
    delivered_before = metric("delivered")
    async with Dispatcher(store, settings(), clock=clock) as dispatcher:
        assert await next_retry(dispatcher, clock) is not None  # attempt 1: 500
        assert await next_retry(dispatcher, clock) is not None  # attempt 2: too slow
        port = receiver.port
        await receiver.stop()
        assert await next_retry(dispatcher, clock) is not None  # attempt 3: connection refused
        receiver.port = port
        await receiver.start()
        assert await dispatcher.run_until_idle() is None  # attempt 4: 200
        assert await dispatcher.run_until_idle() is None  # nothing left: no second send

    delivery = only_delivery(await store.list_deliveries(request_id))
    assert delivery.state == "delivered"
    attempts = delivery.attempts
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert [a.status_code for a in attempts] == [500, None, None, 200]
    assert attempts[0].error == "HTTP 500 X: receiver says no"
    assert attempts[1].error == "timed out after 0.5s"
    assert attempts[1].duration_ms >= 450
    assert attempts[2].error is not None and attempts[2].error.startswith("connection failed (127.0.0.1)")
    assert attempts[3].error is None
    assert metric("delivered") == delivered_before + 1

    # The receiver saw three requests (the refused one never arrived) and answered 200 once.
    assert [r.answered for r in receiver.received] == [500, None, 200]
    bodies = {r.body for r in receiver.received}
    assert len(bodies) == 1  # every retry sends the same bytes...
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery.id}  # ...under one id
    for got in receiver.received:
        assert got.path == "/hook"
        assert got.headers["Content-Type"] == "application/json"
        assert_signed(got)
    body = json.loads(receiver.received[-1].body)
    assert body["request_id"] == body["id"] == request_id
    assert body["status"] == "completed" and body["object"] == "response"
    assert body["response"] == [{"type": "text", "text": "Café ☕ done"}]
    assert body["formation_id"] == "lab" and body["webhook_url"] == receiver.url
    assert "Café ☕".encode() in receiver.received[-1].body


async def test_retries_exhausted_marks_failed(store: Store, receiver: Receiver, clock: ManualClock) -> None:
    request_id = await finished_request(store, receiver.url, status=Status.FAILED)
    receiver.script = [503, 503, 503, 200]
    async with Dispatcher(store, settings(retries=2), clock=clock) as dispatcher:
        await drain(dispatcher, clock)
        clock.advance(3600)
        assert await dispatcher.run_until_idle() is None
    delivery = only_delivery(await store.list_deliveries(request_id))
    assert delivery.state == "failed"
    assert delivery.next_attempt_at is None
    assert [a.status_code for a in delivery.attempts] == [503, 503, 503]
    assert len(receiver.received) == 3  # 1 + retries, never the 4th
    body = json.loads(receiver.received[0].body)
    assert body["status"] == "failed" and body["response"] == []
    assert body["error"]["message"] == "it broke"


async def test_redirects_are_not_followed(store: Store, receiver: Receiver, clock: ManualClock) -> None:
    request_id = await finished_request(store, receiver.url)
    receiver.script = [302]
    async with Dispatcher(store, settings(retries=0), clock=clock) as dispatcher:
        await drain(dispatcher, clock)
    delivery = only_delivery(await store.list_deliveries(request_id))
    assert delivery.state == "failed"
    (attempt,) = delivery.attempts
    assert attempt.status_code == 302
    assert attempt.error is not None and "redirects are not followed" in attempt.error
    assert [r.path for r in receiver.received] == ["/hook"]  # /elsewhere never requested


async def test_send_time_check_refuses_a_loopback_that_is_not_allowed(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    # The store takes any URL; the API checked at submit. At send time the policy is stricter
    # (e.g. the allow list changed), so the dispatcher must refuse, once, without retrying.
    request_id = await finished_request(store, receiver.url)
    refused_before = metric("refused")
    async with Dispatcher(store, settings(allow_hosts=()), clock=clock) as dispatcher:
        assert await dispatcher.run_until_idle() is None
    delivery = only_delivery(await store.list_deliveries(request_id))
    assert delivery.state == "failed"
    (attempt,) = delivery.attempts
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("refused: ")
    assert "loopback" in attempt.error
    assert receiver.received == []
    assert metric("refused") == refused_before + 1


def table(mapping: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> Iterable[str]:
        if host not in mapping:
            raise OSError(f"{host}: no such host")
        return mapping[host]

    return resolve


async def test_a_name_rebound_to_loopback_is_refused_at_send_time(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    url = f"http://rebind.test:{receiver.port}/hook"
    request_id = await finished_request(store, url)
    resolver = table({"rebind.test": ["127.0.0.1"]})  # passed at submit; now resolves to loopback
    async with Dispatcher(store, settings(allow_hosts=()), clock=clock, resolve=resolver) as dispatcher:
        await drain(dispatcher, clock)
    (attempt,) = only_delivery(await store.list_deliveries(request_id)).attempts
    assert attempt.error is not None and "resolves to a loopback address" in attempt.error
    assert receiver.received == []


async def test_connection_goes_to_the_checked_address_with_the_original_host_header(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    # hooks.test exists only in the injected resolver: the POST reaching the receiver proves the
    # dispatcher connected to the address it approved rather than resolving the name again.
    url = f"http://hooks.test:{receiver.port}/hook"
    request_id = await finished_request(store, url)
    resolver = table({"hooks.test": ["127.0.0.1"]})
    async with Dispatcher(store, settings(allow_hosts=("hooks.test",)), clock=clock, resolve=resolver) as d:
        await drain(d, clock)
    assert only_delivery(await store.list_deliveries(request_id)).state == "delivered"
    (got,) = receiver.received
    assert got.headers["Host"] == f"hooks.test:{receiver.port}"
    assert json.loads(got.body)["webhook_url"] == url
    assert_signed(got)


async def test_unresolvable_host_at_send_time_is_retried_not_refused(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    url = f"http://flaky-dns.test:{receiver.port}/hook"
    request_id = await finished_request(store, url)
    answers: list[list[str]] = [[], ["127.0.0.1"]]

    def resolver(host: str, port: int) -> list[str]:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    async with Dispatcher(
        store, settings(allow_hosts=("flaky-dns.test",)), clock=clock, resolve=resolver
    ) as dispatcher:
        await drain(dispatcher, clock)
    delivery = only_delivery(await store.list_deliveries(request_id))
    assert delivery.state == "delivered"
    assert [a.status_code for a in delivery.attempts] == [None, 200]
    assert delivery.attempts[0].error is not None and "no addresses" in delivery.attempts[0].error


async def test_redelivery_is_a_new_delivery_with_the_same_bytes(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    request_id = await finished_request(store, receiver.url)
    async with Dispatcher(store, settings(), clock=clock) as dispatcher:
        await drain(dispatcher, clock)
        clock.advance(60)
        again = await store.enqueue_redelivery(request_id)
        await drain(dispatcher, clock)
    first, second = receiver.received
    assert first.body == second.body
    assert second.headers["webhook-id"] == again.id != first.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"]) + 59
    deliveries: list[Delivery] = await store.list_deliveries(request_id)
    assert [d.state for d in deliveries] == ["delivered", "delivered"]


async def test_run_loop_is_woken_by_a_terminal_write_and_stops_cleanly(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    stop = asyncio.Event()
    async with Dispatcher(store, settings(poll_interval=30.0), clock=clock) as dispatcher:
        loop = asyncio.create_task(dispatcher.run(stop))
        await asyncio.sleep(0.05)  # the loop is now waiting (a 30 s poll)
        started = time.monotonic()
        request_id = await finished_request(store, receiver.url)
        await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
        assert time.monotonic() - started < 2  # woken by the write, not by the poll
        for _ in range(100):
            if only_delivery(await store.list_deliveries(request_id)).state == "delivered":
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, timeout=5)
    assert only_delivery(await store.list_deliveries(request_id)).state == "delivered"


async def test_run_loop_bounded_concurrency_delivers_everything(
    store: Store, receiver: Receiver, clock: ManualClock
) -> None:
    ids = [await finished_request(store, receiver.url, text=f"n{i}") for i in range(12)]
    receiver.script = [500] * 3  # three first attempts fail; their retries are woken by the loop
    receiver.pause = 0.05
    stop = asyncio.Event()
    async with Dispatcher(store, settings(concurrency=3), clock=clock) as dispatcher:
        loop = asyncio.create_task(dispatcher.run(stop))
        for _ in range(250):
            states = [only_delivery(await store.list_deliveries(i)).state for i in ids]
            if all(s == "delivered" for s in states):
                break
            clock.advance(0.02)
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, timeout=5)
    assert [only_delivery(await store.list_deliveries(i)).state for i in ids] == ["delivered"] * 12
    assert receiver.max_concurrent == 3  # bounded, and the bound is used
    texts = sorted(json.loads(r.body)["response"][0]["text"] for r in receiver.received if r.answered == 200)
    assert texts == sorted(f"n{i}" for i in range(12))  # each delivered exactly once


def test_backoff_is_exponential_capped_and_jittered() -> None:
    import random

    s = settings(initial_delay=1.0, max_delay=3600.0, factor=2.0, jitter=0.0)
    rng = random.Random(7)
    assert [s.backoff(n, rng) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert s.backoff(40, rng) == 3600.0
    jittery = settings(initial_delay=10.0, max_delay=3600.0, jitter=0.25)
    delays = {jittery.backoff(1, rng) for _ in range(50)}
    assert all(7.5 <= d <= 12.5 for d in delays) and len(delays) > 1

"""Webhook dispatcher: the outbox loop that POSTs terminal status documents, signed, with retries.

Flow of one attempt: `store.claim_outbox` leases a due delivery -> delivery/sender.py checks the
URL again, signs the body and POSTs it once -> `store.record_attempt` with the status code, error
and duration, and the next try time (DispatcherSettings.backoff; None when the attempts are used
up, or the URL is refused). The state lives in the store, so retries survive restarts; the
dispatcher itself holds nothing that matters. With tracing on, each attempt is an
`errand.webhook` span continuing the request's stored trace context, and its POST carries
that span's `traceparent` (tracing.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from errand import tracing
from errand.clock import Clock, new_id
from errand.delivery.secret import signing_secret_when_ready
from errand.delivery.sender import Sender, SendOutcome, pinning_client
from errand.delivery.settings import DispatcherSettings
from errand.delivery.urlguard import Resolver, system_resolver
from errand.errors import ErrandError
from errand.logs import brief
from errand.metrics import WEBHOOK_DELIVERIES, WEBHOOK_SECONDS
from errand.models import Delivery, OutboxItem
from errand.store.base import Store

if TYPE_CHECKING:
    from errand.config import Config

__all__ = ["Dispatcher", "run_dispatcher"]

log = logging.getLogger("errand.delivery")


async def run_dispatcher(store: Store, config: Config, stop: asyncio.Event, *, clock: Clock) -> None:
    """The dispatcher of `errand serve` and `errand worker`: deliver until `stop`, signing with
    delivery/secret.py's secret once the database can give it (waited for, not fatal)."""
    secret = await signing_secret_when_ready(config, store, stop)
    if secret is None:
        return
    async with Dispatcher(store, DispatcherSettings.from_config(config, secret), clock=clock) as dispatcher:
        await dispatcher.run(stop)


class Dispatcher:
    """Delivers due outbox rows; any number of dispatchers may share a store (leases)."""

    def __init__(
        self,
        store: Store,
        settings: DispatcherSettings,
        *,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        resolve: Resolver = system_resolver,
        worker_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id or new_id("dsp")
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._own_http = http is None
        self._http = http or pinning_client(settings)
        self._sender = Sender(settings, clock=clock, http=self._http, resolve=resolve)
        self._retrying: dict[str, float] = {}  # delivery id -> next attempt time (ours only)

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if the dispatcher created it."""
        if self._own_http:
            await self._http.aclose()

    # -- loops ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, at most `concurrency` attempts at a time; then let the
        attempts in flight finish (bounded by the timeout). Woken by terminal writes; polls
        every poll_interval as a safety net and wakes for the retries it scheduled."""
        inflight: set[asyncio.Task[Delivery | None]] = set()
        try:
            while not stop.is_set():
                free = self.settings.concurrency - len(inflight)
                if free <= 0:
                    await self._pause(stop, inflight)
                    continue
                claimed_at = self._clock.now()
                items = await self._claim(free)
                for item in items:
                    task = asyncio.create_task(self.deliver(item))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if len(items) < free:  # nothing more due now
                    self._forget_stale(claimed_at)
                    await self._pause(stop, None)
        finally:
            await self._finish(inflight)

    async def run_until_idle(self) -> float | None:
        """Drain mode (tests, CLI): deliver everything due now, including retries that come due
        meanwhile. Returns the earliest retry this dispatcher scheduled that is not yet due, or
        None when none is left: advance the clock to it (or sleep) and call again."""
        while True:
            claimed_at = self._clock.now()
            items = await self._claim(self.settings.concurrency)
            if not items:
                break
            await asyncio.gather(*(self.deliver(item) for item in items))
        self._forget_stale(claimed_at)
        return min(self._retrying.values(), default=None)

    def _forget_stale(self, before: float) -> None:
        """Drop our retries that were already due at a claim that did not return them: another
        dispatcher holds or finished them, so they are not ours to wait for."""
        for delivery_id, due in list(self._retrying.items()):
            if due <= before:
                del self._retrying[delivery_id]

    async def _claim(self, limit: int) -> list[OutboxItem]:
        try:
            return await self._store.claim_outbox(self.worker_id, limit, self.settings.lease_seconds)
        except Exception:  # e.g. StoreUnavailable: keep the loop alive, but never spin on it
            log.exception("webhook dispatcher: claiming deliveries failed; retrying after the poll interval")
            await asyncio.sleep(self.settings.poll_interval)
            return []

    async def _pause(self, stop: asyncio.Event, inflight: set[asyncio.Task[Delivery | None]] | None) -> None:
        """Wait for stop, or a free slot (when full), or a wake-up / our next retry / the poll."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if inflight:
            waiters.append(asyncio.ensure_future(asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)))
        else:
            soonest = min(self._retrying.values(), default=float("inf")) - self._clock.now()
            timeout = max(0.0, min(self.settings.poll_interval, soonest))
            waiters.append(asyncio.ensure_future(self._store.wait_for_outbox(timeout)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _finish(self, inflight: Iterable[asyncio.Task[Delivery | None]]) -> None:
        tasks = list(inflight)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.settings.timeout + 5)
        for task in pending:  # their leases expire and another dispatcher retries them
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- one attempt ------------------------------------------------------------------------
    async def deliver(self, item: OutboxItem) -> Delivery | None:
        """One attempt at one claimed delivery, recorded in the store. Returns the delivery's
        new state (None if the store could not record it: the lease expires and it is retried)."""
        number = item.attempt + 1
        started = time.perf_counter()  # a measurement of real I/O, not a decision: not the Clock
        outcome = await self._traced_send(item, number)
        elapsed = time.perf_counter() - started
        final = outcome.ok or not outcome.retryable or number >= 1 + self.settings.retries
        next_at = None if final else self._clock.now() + self.settings.backoff(number, self._rng)
        try:
            delivery = await self._store.record_attempt(
                item.id,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=round(elapsed * 1000),
                next_attempt_at=next_at,
            )
        except Exception:
            log.exception(
                "webhook %s of %s: could not record attempt %d",
                item.id,
                item.request_id,
                number,
                extra={"request_id": item.request_id},
            )
            return None
        self._account(item, number, outcome, delivery, elapsed)
        return delivery

    async def _traced_send(self, item: OutboxItem, number: int) -> SendOutcome:
        """The send as an `errand.webhook` span, a child of the request's trace (tracing on)."""
        if not tracing.active():
            return await self._sender.send(item)
        try:
            parent = (await self._store.get(item.request_id)).trace_context
        except ErrandError:  # purged or unreadable now: the attempt is a trace of its own
            parent = None
        ids = {"errand.request_id": item.request_id, "errand.delivery_id": item.id, "errand.attempt": number}
        with tracing.span("errand.webhook", kind="client", parent=parent, attributes=ids) as span:
            outcome = await self._sender.send(item)
            if outcome.status_code is not None:
                span.set_attribute("http.response.status_code", outcome.status_code)
            if not outcome.ok:
                tracing.fail(span, str(outcome.status_code or "error"), outcome.error or "")
        return outcome

    def _account(
        self, item: OutboxItem, number: int, outcome: SendOutcome, delivery: Delivery, elapsed: float
    ) -> None:
        """Metrics, logs and our own retry schedule after a recorded attempt."""
        if delivery.state == "retrying" and delivery.next_attempt_at is not None:
            self._retrying[item.id] = delivery.next_attempt_at
            _count("retry", elapsed)
            log.warning(
                "webhook %s of %s: attempt %d failed (%s); retry in %.2fs",
                item.id,
                item.request_id,
                number,
                _answer(outcome),
                max(0.0, delivery.next_attempt_at - self._clock.now()),
                extra={"request_id": item.request_id},
            )
            return
        self._retrying.pop(item.id, None)
        if delivery.state == "delivered":
            _count("delivered", elapsed)
            log.info(
                "webhook %s of %s: delivered at attempt %d (%s) in %.3fs",
                item.id,
                item.request_id,
                number,
                _answer(outcome),
                elapsed,
                extra={"request_id": item.request_id},
            )
            return
        _count("failed" if outcome.retryable else "refused", elapsed)
        log.error(
            "webhook %s of %s: failed for good after %d attempt(s): %s",
            item.id,
            item.request_id,
            number,
            _answer(outcome),
            extra={"request_id": item.request_id},
        )


def _answer(outcome: SendOutcome) -> str:
    """The attempt's error (`HTTP 503 ...: body`, `timed out ...`), else its status."""
    if outcome.error:
        return brief(outcome.error)
    return f"HTTP {outcome.status_code}" if outcome.status_code is not None else "no answer"


def _count(outcome: str, elapsed: float) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    WEBHOOK_SECONDS.labels(outcome).observe(elapsed)

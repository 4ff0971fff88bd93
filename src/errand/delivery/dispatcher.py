"""Webhook dispatcher: the outbox loop that POSTs terminal status documents, signed, with retries.

Flow of one attempt: `store.claim_outbox` leases a due delivery -> the URL is checked again
(DNS may have changed since submit) and the connection is pinned to the addresses that passed,
so a rebinding answer between check and connect cannot reach an internal host -> the body is
built deterministically from the stored document, so every retry of a delivery sends the same
bytes under the same `webhook-id` (receivers dedupe on it) -> `webhooks.sign` with a fresh
timestamp -> POST without following redirects, under one deadline for the whole attempt ->
`store.record_attempt` with the status code, error and duration, and the next try time (or
None when the attempts are used up, or the URL is refused). The state lives in the store, so
retries survive restarts; the dispatcher itself holds nothing that matters.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter, Histogram

from errand.clock import Clock, new_id
from errand.delivery.urlguard import (
    Resolver,
    Target,
    UnresolvableHost,
    resolve_target_async,
    system_resolver,
)
from errand.errors import ConfigError, InvalidRequest
from errand.models import Delivery, OutboxItem
from errand.store.base import Store
from errand.webhooks import build_body, canonical_json, sign

if TYPE_CHECKING:
    from errand.config import Config

__all__ = ["Dispatcher", "DispatcherSettings"]

log = logging.getLogger("errand.delivery")

ATTEMPTS = Counter(
    "errand_webhook_attempts",
    "Webhook delivery attempts, by outcome (delivered, retry, failed, refused)",
    ["outcome"],
)
DELIVERIES = Counter("errand_webhook_deliveries", "Webhook deliveries that reached a final state", ["state"])
ATTEMPT_SECONDS = Histogram(
    "errand_webhook_attempt_duration_seconds",
    "Time spent on one webhook delivery attempt (resolve + connect + answer)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_MAX_ADDRESSES = 3  # addresses tried (in resolver order) when connecting fails
_SNIPPET = 200  # characters of a failing receiver's answer kept in the attempt record


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    """How deliveries are made. `retries` counts attempts after the first (1 + retries in all)."""

    formation_id: str
    secret: str = field(repr=False)
    retries: int = 3
    timeout: float = 10.0
    allow_hosts: tuple[str, ...] = ()
    initial_delay: float = 1.0
    max_delay: float = 3600.0
    factor: float = 2.0
    jitter: float = 0.25
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter] (no herds)."""
    concurrency: int = 32
    lease_seconds: float = 60.0
    """How long a claimed delivery is ours; longer than `timeout`, so no one else sends it meanwhile."""
    poll_interval: float = 1.0
    user_agent: str = "errand-webhooks/1"

    def __post_init__(self) -> None:
        problems = [
            (not self.secret, "a signing secret is required"),
            (self.retries < 0, "retries must be >= 0"),
            (self.timeout <= 0, "timeout must be > 0"),
            (self.concurrency < 1, "concurrency must be >= 1"),
            (self.lease_seconds <= self.timeout, "lease_seconds must exceed timeout"),
            (not 0 <= self.jitter <= 1, "jitter must be within [0, 1]"),
            (self.factor < 1, "factor must be >= 1"),
            (self.initial_delay < 0 or self.max_delay < 0, "delays must be >= 0"),
            (self.poll_interval <= 0, "poll_interval must be > 0"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(f"webhook dispatcher: {message}")
        try:
            sign(b"", self.secret, msg_id="check", timestamp=0)
        except ValueError:
            raise ConfigError(
                "async.webhook_secret: a whsec_ secret must be base64 after the prefix"
            ) from None

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> DispatcherSettings:
        """Settings from formation.yaml. The secret is async.webhook_secret, else the first admin
        key (MUXI's choice, kept for compatibility); with neither, webhooks cannot be signed:
        ConfigError here (never unsigned bodies). `errand serve` and `errand worker` then run no
        dispatcher at all, and the API refuses webhook URLs at submit."""
        a = config.async_
        secret = config.webhook_signing_secret
        if not secret:
            raise ConfigError(
                "async.webhook_secret: webhooks must be signed; set async.webhook_secret (or an admin key)"
            )
        values: dict[str, Any] = {
            "formation_id": config.name,
            "secret": secret,
            "retries": a.webhook_retries,
            "timeout": a.webhook_timeout,
            "allow_hosts": tuple(a.webhook_allow_hosts),
            "initial_delay": a.webhook_initial_delay,
            "max_delay": a.webhook_max_delay,
            "concurrency": a.webhook_concurrency,
            "lease_seconds": max(60.0, 3 * a.webhook_timeout + 10),
            "poll_interval": config.workers.poll_interval,
        }
        values.update(overrides)
        return cls(**values)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped, jittered."""
        exponent = min(max(attempt - 1, 0), 64)
        delay = min(self.max_delay, self.initial_delay * self.factor**exponent)
        if self.jitter:
            delay *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, min(self.max_delay, delay))


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    error: str | None
    retryable: bool = True

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _one_line(text: str, limit: int = _SNIPPET) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


async def _snippet(response: httpx.Response) -> str:
    """The start of a failing answer (for the attempt record), without reading a huge body."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _SNIPPET:
            break
    return _one_line(data[:_SNIPPET].decode("utf-8", "replace"))


async def _describe_failure(response: httpx.Response) -> str:
    code = response.status_code
    text = f"HTTP {code} {response.reason_phrase}".rstrip()
    if 300 <= code < 400:
        return f"{text} (redirects are not followed)"
    snippet = await _snippet(response)
    return f"{text}: {snippet}" if snippet else text


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
        self._resolve = resolve
        self._rng = rng or random.Random()
        self._own_http = http is None
        # No proxies from the environment (they would resolve the host themselves, defeating the
        # address pinning) and no kept-alive connections (a connection pinned to one IP must not
        # be reused for another host's webhook).
        self._http = http or httpx.AsyncClient(
            trust_env=False,
            follow_redirects=False,
            timeout=settings.timeout,
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=0),
        )
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
        outcome = await self._attempt(item)
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
            log.exception("webhook %s: could not record attempt %d", item.id, number)
            return None
        self._account(item, number, outcome, delivery, elapsed)
        return delivery

    def _account(
        self, item: OutboxItem, number: int, outcome: _Outcome, delivery: Delivery, elapsed: float
    ) -> None:
        """Metrics, logs and our own retry schedule after a recorded attempt."""
        ATTEMPT_SECONDS.observe(elapsed)
        if delivery.state == "retrying" and delivery.next_attempt_at is not None:
            self._retrying[item.id] = delivery.next_attempt_at
            ATTEMPTS.labels("retry").inc()
            log.info("webhook %s attempt %d failed (%s); retrying", item.id, number, outcome.error)
            return
        self._retrying.pop(item.id, None)
        DELIVERIES.labels(delivery.state).inc()
        if delivery.state == "delivered":
            ATTEMPTS.labels("delivered").inc()
            return
        ATTEMPTS.labels("failed" if outcome.retryable else "refused").inc()
        log.warning(
            "webhook %s for request %s failed after %d attempt(s): %s",
            item.id,
            item.request_id,
            number,
            outcome.error,
        )

    def body(self, item: OutboxItem) -> bytes:
        """The exact bytes sent for a delivery: the same on every attempt (and after a restart),
        because the timestamp comes from the stored document, not from the send time."""
        doc = item.body
        moment = doc.get("completed_at") or doc.get("created_at")
        when = moment if isinstance(moment, int | float) else self._clock.now()
        return canonical_json(
            build_body(
                doc,
                formation_id=self.settings.formation_id,
                timestamp_ms=round(when * 1000),
                webhook_url=item.url,
            )
        )

    async def _attempt(self, item: OutboxItem) -> _Outcome:
        try:
            target = await resolve_target_async(item.url, self.settings.allow_hosts, resolve=self._resolve)
        except UnresolvableHost as exc:
            return _Outcome(None, exc.message)  # DNS trouble may pass: retry
        except InvalidRequest as exc:
            return _Outcome(None, f"refused: {exc.message}", retryable=False)
        try:
            body = self.body(item)
            headers = sign(body, self.settings.secret, msg_id=item.id, timestamp=int(self._clock.now()))
            headers["User-Agent"] = self.settings.user_agent
            return await self._post(item.url, target, body, headers)
        except Exception as exc:  # a bug must not stall the outbox: record it and retry later
            log.exception("webhook %s: unexpected error", item.id)
            return _Outcome(None, f"internal error: {type(exc).__name__}: {exc}")

    async def _post(self, url: str, target: Target, body: bytes, headers: dict[str, str]) -> _Outcome:
        """POST to the approved addresses in turn (the next one only when connecting fails)."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            return _Outcome(None, f"refused: webhook_url cannot be parsed ({exc})", retryable=False)
        if parsed.host.rstrip(".").lower() != target.host:
            return _Outcome(None, "refused: webhook_url host is ambiguous", retryable=False)
        headers = {**headers, "Host": parsed.netloc.decode("ascii")}
        extensions = {"sni_hostname": parsed.raw_host.decode("ascii")} if parsed.scheme == "https" else {}
        error = "no address to connect to"
        try:
            async with asyncio.timeout(self.settings.timeout):
                for address in target.addresses[:_MAX_ADDRESSES]:
                    pinned = parsed.copy_with(host=address)
                    try:
                        return await self._send(pinned, body, headers, extensions)
                    except httpx.ConnectError as exc:
                        error = f"connection failed ({address}): {exc or type(exc).__name__}"
        except (TimeoutError, httpx.TimeoutException):
            return _Outcome(None, f"timed out after {self.settings.timeout:g}s")
        except httpx.HTTPError as exc:
            return _Outcome(None, f"{type(exc).__name__}: {exc}")
        return _Outcome(None, error)

    async def _send(
        self, url: httpx.URL, body: bytes, headers: dict[str, str], extensions: dict[str, Any]
    ) -> _Outcome:
        async with self._http.stream(
            "POST", url, content=body, headers=headers, extensions=extensions, follow_redirects=False
        ) as response:
            if 200 <= response.status_code < 300:
                return _Outcome(response.status_code, None)
            return _Outcome(response.status_code, await _describe_failure(response))

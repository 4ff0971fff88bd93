"""The worker: claim runnable requests, run each as an attempt, keep leases and watch cancels.

One claim loop fills up to `concurrency` slots. It sleeps on a single wake-up event set by a
submit (store.wait_for_work, with `poll_interval` as the safety net), by a finished attempt
(its slot is refilled at once), by a housekeeping requeue and by stop. Supervised side tasks
renew all leases in one call, stop attempts whose request was cancelled (within a second) or
whose lease was lost, and requeue/purge expired requests; a side task that crashes is logged
and restarted, never silently gone.

On stop, the worker stops claiming and gives running attempts `shutdown_grace` seconds; the
ones still running are then cancelled *without* writing anything. They keep their lease, and
another worker takes them over (that attempt counts as failed) once this process is gone.

Dead workers are seen directly, not only by their leases: `run()` registers the worker
(`store.register_worker`) and, at start and then every `liveness_interval`, takes over the
requests of registered workers known dead (`store.requeue_dead`: a process of this host that is
gone, or on PostgreSQL a worker whose database session ended). Lease expiry stays the fallback
(a partition, another host on SQLite), checked every lease/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from errand.agents.registry import AgentRegistry
from errand.agents.threads import AgentThreads
from errand.backoff import Backoff
from errand.clock import Clock, new_id
from errand.engine.attempt import Attempt, Outcome, Phase
from errand.engine.housekeeping import expiry_loop, fold_loop, purge_loop, requeue_loop
from errand.engine.settings import WorkerSettings
from errand.engine.takeover import report_takeover
from errand.engine.watchdog import LoopWatchdog
from errand.errors import StoreUnavailable
from errand.logs import REQUEST_ID, brief
from errand.metrics import (
    ATTEMPT_SECONDS,
    IN_FLIGHT,
    INPUT_ASKED,
    PROCESS_INFO,
    REQUESTS,
    RETRIES,
    STRAY_THREADS,
    agent_label,
)
from errand.models import Claim
from errand.store.base import Store

__all__ = ["Worker"]

_STORE_RETRY = Backoff(initial=0.1, maximum=5.0)
"""Claiming again after the store was unavailable (the n-th failure in a row waits delay(n))."""
_RESTART = Backoff(initial=0.1, maximum=10.0)
"""Restarting a crashed side loop; a loop that ran for over _HEALTHY_RUN starts again at 0.1 s."""
_HEALTHY_RUN = 30.0

log = logging.getLogger("errand.worker")


class Worker:
    """Runs requests from a Store with the agents of an AgentRegistry."""

    def __init__(
        self,
        store: Store,
        agents: AgentRegistry,
        settings: WorkerSettings,
        *,
        clock: Clock,
        worker_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.agents = agents
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or new_id("wrk")
        self._rng = rng or random.Random()
        self._attempts: dict[str, Attempt] = {}
        self._threads = AgentThreads(settings.concurrency)
        """Sync handlers and tools run here, not in asyncio's shared default pool."""
        self._stray: set[Attempt] = set()
        """Ended attempts whose thread still runs: each keeps its slot until the thread returns."""
        self._stray_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._registered = False

    @property
    def running(self) -> int:
        """Attempts in progress now."""
        return len(self._attempts)

    # -- entry points -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then shut down gracefully (see the module docstring)."""
        self._stopping = False
        self._stop_requested.clear()
        PROCESS_INFO.labels(self.worker_id, "worker").set(1)
        if self.settings.liveness_interval > 0:
            try:
                await self._take_over_dead()  # a crashed predecessor's requests run again at once
            except StoreUnavailable as exc:
                log.warning("worker %s: cannot register yet (%s); retrying", self.worker_id, exc)
        async with self._side_tasks(housekeeping=True):
            watcher = asyncio.create_task(self._wake_on(stop), name="errand-worker-stop")
            try:
                await self._claim_loop(drain=False)
            except BaseException:
                await self._shutdown(grace=0.0)
                raise
            finally:
                watcher.cancel()
            await self._shutdown(grace=self.settings.shutdown_grace)
        self._threads.shutdown()
        PROCESS_INFO.remove(self.worker_id, "worker")

    async def run_until_idle(self) -> None:
        """Drain mode (tests, benchmarks): return once nothing is claimable and nothing runs.

        Retries scheduled for later are not waited for (advance the clock, call again), and
        lost leases are not requeued (no housekeeping); heartbeats and cancels work as in run().
        """
        self._stopping = False
        async with self._side_tasks(housekeeping=False):
            try:
                await self._claim_loop(drain=True)
            except BaseException:
                await self._shutdown(grace=0.0)
                raise

    # -- claim loop ---------------------------------------------------------------------------
    async def _claim_loop(self, *, drain: bool) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            free = self.settings.concurrency - len(self._attempts) - len(self._stray)
            if free > 0:
                try:
                    claims = await self.store.claim(
                        self.worker_id, free, self.settings.lease_seconds, self.settings.limits
                    )
                except StoreUnavailable as exc:
                    failures += 1
                    await self._pause_after_store_error("claim", exc, failures)
                    continue
                failures = 0
                for claim in claims:
                    self._start(claim)
                if len(claims) == free:
                    continue  # full batch: there may be more
                if drain and not claims and not self._attempts and not self._stray:
                    return
            await self._wake.wait()

    async def _pause_after_store_error(self, what: str, exc: Exception, failures: int) -> None:
        delay = _STORE_RETRY.delay(failures, self._rng)
        log.warning("store unavailable during %s (%s); retrying in %.2fs", what, exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), delay)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        self._stop_requested.set()
        self._wake.set()

    def _start(self, claim: Claim) -> None:
        rid = claim.request.id
        stale = self._attempts.get(rid)
        if stale is not None:  # our own older attempt outlived its lease and was taken over
            stale.stop(Outcome.LEASE_LOST)
        agent_id = claim.request.agent or self.agents.default_id or ""
        attempt = Attempt(
            claim,
            self.store,
            self.agents,
            self.settings,
            self.clock,
            self._rng,
            agent_id,
            threads=self._threads.group(),
        )
        self._attempts[rid] = attempt
        previous = claim.request.error
        log.info(
            "attempt %d of %s started on worker %s (agent %s)%s",
            claim.attempt,
            rid,
            self.worker_id,
            agent_id or "(routed)",
            f"; taking over: {brief(previous.message)}" if previous and previous.type == "WorkerLost" else "",
            extra={"request_id": rid},
        )
        attempt.in_flight_label = agent_label(agent_id, self.agents)
        IN_FLIGHT.labels(attempt.in_flight_label).inc()
        attempt.task = asyncio.create_task(self._run_attempt(attempt), name=f"errand-attempt-{rid}")

    async def _run_attempt(self, attempt: Attempt) -> Outcome:
        REQUEST_ID.set(attempt.request_id)  # this task's lines, the agent's own included, name it
        started = time.perf_counter()
        outcome = Outcome.UNRECORDED
        try:
            outcome = await attempt.run()
        except asyncio.CancelledError:
            raise
        except BaseException:  # whatever agent code raised, it never takes the worker down
            log.exception("attempt %d of %s crashed in the worker", attempt.claim.attempt, attempt.request_id)
        finally:
            if self._attempts.get(attempt.request_id) is attempt:
                del self._attempts[attempt.request_id]
            if attempt.threads.running:
                self._hold_slot(attempt, outcome)
            IN_FLIGHT.labels(attempt.in_flight_label).dec()
            self._count(attempt, outcome, time.perf_counter() - started)
            self._wake.set()
        return outcome

    def _count(self, attempt: Attempt, outcome: Outcome, seconds: float) -> None:
        """The metrics of an ended attempt (under the agent it ran as: a router may have chosen it)."""
        agent = agent_label(attempt.agent_id, self.agents)
        ATTEMPT_SECONDS.labels(agent, outcome.value).observe(seconds)
        if outcome is Outcome.RETRIED:
            RETRIES.labels(agent).inc()
        elif outcome is Outcome.INPUT_REQUIRED:
            INPUT_ASKED.labels(agent).inc()
        elif outcome in (Outcome.COMPLETED, Outcome.FAILED):
            REQUESTS.labels(attempt.claim.request.kind, agent, outcome.value).inc()

    def _hold_slot(self, attempt: Attempt, outcome: Outcome) -> None:
        """The attempt ended (cancelled, lease lost, shut down...) while its thread runs on: the
        thread still uses a pool thread, so its slot stays taken until it returns."""
        log.warning(
            "attempt %d of %s ended (%s) but its thread is still running; its slot stays taken "
            "until it returns",
            attempt.claim.attempt,
            attempt.request_id,
            outcome.value,
        )
        self._stray.add(attempt)
        STRAY_THREADS.inc()
        task = asyncio.create_task(self._release_slot(attempt), name=f"errand-stray-{attempt.request_id}")
        self._stray_tasks.add(task)
        task.add_done_callback(self._stray_tasks.discard)

    async def _release_slot(self, attempt: Attempt) -> None:
        try:
            await attempt.threads.idle()
            log.info("the stray thread of %s returned; its slot is free", attempt.request_id)
        finally:
            self._stray.discard(attempt)
            STRAY_THREADS.dec()
            self._wake.set()

    async def _shutdown(self, *, grace: float) -> None:
        """Let running attempts finish for `grace` seconds, then stop the rest unwritten."""
        self._stopping = True
        tasks = [a.task for a in self._attempts.values() if a.task is not None]
        if not tasks:
            return
        if grace > 0:
            log.info("waiting up to %.1fs for %d running attempts", grace, len(tasks))
            await asyncio.wait(tasks, timeout=grace)
        left = [a for a in self._attempts.values() if a.task is not None and not a.task.done()]
        for attempt in left:
            attempt.stop(Outcome.ABANDONED)
        if left:
            log.warning("stopped %d attempts at shutdown; they are retried after lease expiry", len(left))
            await asyncio.wait([a.task for a in left if a.task is not None], timeout=5.0)

    # -- side tasks ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _side_tasks(self, *, housekeeping: bool) -> AsyncIterator[None]:
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "notifier": self._notify_loop,
            "heartbeat": self._heartbeat_loop,
            "cancel-watch": self._cancel_loop,
        }
        if housekeeping:
            loops["requeue"] = functools.partial(
                requeue_loop, self.store, self.settings, self._wake, self.agents
            )
            loops["purge"] = functools.partial(purge_loop, self.store, self.settings)
            loops["queue-fold"] = functools.partial(fold_loop, self.store)
            loops["input-expiry"] = functools.partial(expiry_loop, self.store)
            if self.settings.liveness_interval > 0:
                loops["liveness"] = self._liveness_loop
        tasks = [asyncio.create_task(self._supervise(n, f), name=f"errand-{n}") for n, f in loops.items()]
        try:
            with LoopWatchdog(self.settings.block_warning_seconds, lambda: list(self._attempts)):
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a side loop forever: a crash is logged and the loop restarted after a backoff.
        Each quick crash in a row doubles the wait (0.2 s, 0.4 s, ... up to 10 s); after a loop
        that ran for over _HEALTHY_RUN seconds it starts again at 0.1 s."""
        quick_crashes = 0
        while True:
            started = time.monotonic()
            try:
                await loop()
            except StoreUnavailable as exc:
                log.warning("worker %s: store unavailable (%s); restarting", name, exc)
            except Exception:
                log.exception("worker %s crashed; restarting", name)
            quick_crashes = 0 if time.monotonic() - started > _HEALTHY_RUN else quick_crashes + 1
            await asyncio.sleep(_RESTART.delay(quick_crashes + 1, self._rng))

    async def _notify_loop(self) -> None:
        while True:
            await self.store.wait_for_work(self.settings.poll_interval)
            self._wake.set()

    async def _heartbeat_loop(self) -> None:
        """Renew leases every lease/3. While the database is away, try again every lease/10
        (at most 1 s) instead of leaving it to the supervisor's growing backoff: a lease
        survives an outage only if a renewal lands before it expires, and a lapsed lease means
        the request runs again elsewhere (fenced, so correct, but wasted work)."""
        beat = self.settings.lease_seconds / 3
        delay = beat
        while True:
            await asyncio.sleep(delay)
            try:
                await self.heartbeat()
            except StoreUnavailable as exc:
                log.warning("worker heartbeat: store unavailable (%s); retrying soon", exc)
                delay = min(self.settings.lease_seconds / 10, 1.0)
            else:
                delay = beat

    async def heartbeat(self) -> None:
        """Renew every running attempt's lease in one call; stop the ones reported lost."""
        held = {rid: a.claim.attempt for rid, a in self._attempts.items()}
        if not held:
            return
        lost = await self.store.heartbeat(self.worker_id, held, self.settings.lease_seconds)
        for rid in lost:
            attempt = self._attempts.get(rid)
            if attempt is not None and attempt.claim.attempt == held[rid]:
                log.warning(
                    "attempt %d of %s lost its lease; stopping it", held[rid], rid, extra={"request_id": rid}
                )
                attempt.stop(Outcome.LEASE_LOST)

    async def _cancel_loop(self) -> None:
        timeout = min(0.5, self.settings.poll_interval)
        while True:
            await self.store.wait_for_cancellation(timeout)
            await self.stop_cancelled()

    async def stop_cancelled(self) -> None:
        """Stop the running attempts whose request was cancelled (or ended elsewhere)."""
        ids = [rid for rid, a in self._attempts.items() if a.phase is Phase.RUNNING]
        if not ids:
            return
        for rid in await self.store.cancelled_among(ids):
            attempt = self._attempts.get(rid)
            if attempt is not None:
                log.info(
                    "cancel of %s seen; stopping attempt %d (cooperative)",
                    rid,
                    attempt.claim.attempt,
                    extra={"request_id": rid},
                )
                attempt.stop(Outcome.CANCELLED)

    async def _take_over_dead(self) -> None:
        """Register this worker (once), then take over the requests of dead workers."""
        if not self._registered:
            await self.store.register_worker(self.worker_id)
            self._registered = True
        taken = await self.store.requeue_dead()
        if taken:
            report_takeover(taken, "of dead workers", self.agents)
            self._wake.set()

    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.liveness_interval)
            await self._take_over_dead()

    def __repr__(self) -> str:
        return f"Worker({self.worker_id!r}, running={len(self._attempts)})"

"""One attempt of one request: build the context, run the agent, classify, record.

The worker owns the loop and the leases; this module owns what happens between a claim and
the write that ends it. Every store write carries the claim's attempt number (the fencing
token): a stale attempt gets LeaseLost and drops silently, because the request was taken over,
cancelled or finished by someone who had the right to.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from errand import tracing
from errand.agents.base import InputRequested, RunContext, coerce_result
from errand.agents.registry import AgentRegistry
from errand.agents.threads import ThreadGroup
from errand.backoff import Backoff
from errand.clock import Clock
from errand.engine.conversation import conversation_of
from errand.engine.events import EventWriter
from errand.engine.retry import decide, error_info
from errand.engine.settings import WorkerSettings
from errand.engine.storable import unstorable
from errand.errors import InvalidRequest, LeaseLost, PermanentError, StoreUnavailable, TaskTimeout
from errand.logs import brief, raised
from errand.metrics import STRAY_THREADS, TIMEOUTS, agent_label
from errand.models import Claim, ErrorInfo, Progress, Result, Status
from errand.store.base import Store

__all__ = ["Attempt", "EventWriter", "Outcome", "Phase", "format_seconds"]

log = logging.getLogger("errand.worker")
T = TypeVar("T")


class Outcome(enum.StrEnum):
    """How an attempt ended, as counted in metrics."""

    COMPLETED = "completed"
    RETRIED = "retried"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the request was cancelled; nothing written
    INPUT_REQUIRED = "input_required"  # the handler asked; the request waits for the answer
    LEASE_LOST = "lease_lost"  # taken over or finished elsewhere; nothing written
    ABANDONED = "abandoned"  # worker shut down; another worker takes over after lease expiry
    UNRECORDED = "unrecorded"  # the store stayed unavailable; the lease will expire and requeue


class Phase(enum.Enum):
    RUNNING = "running"  # the agent runs (or its events are flushed): stoppable
    RECORDING = "recording"  # the outcome is being written: let it finish


ROUTED_SCAN = 16
"""How many of a request's first events are searched for an earlier attempt's `routed` event."""

_RECORD_RETRY = Backoff(initial=0.05, maximum=5.0)
"""Writing an outcome again while the store is unavailable (until record_retry_seconds)."""

STILL_RUNNING = "attempt thread still running after timeout; its retry waits until it returns"
"""The progress message of a request held while a timed-out attempt's thread runs on."""


def format_seconds(seconds: float) -> str:
    """300.0 -> "300", 0.5 -> "0.5" (as in `Task exceeded timeout (300s)`)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds}"


async def run_agent(
    agents: AgentRegistry, agent_id: str | None, message: str, ctx: RunContext, timeout: float
) -> Result | BaseException:
    """Run the agent under the task timeout. Returns its Result or the exception it raised;
    an agent's exception never escapes -- SystemExit, KeyboardInterrupt and any other
    BaseException included: agent code fails its own request, never the process -- and a
    cancel of this attempt does. The timeout counts from the handler's start: a wait for a
    pool thread is added back (ThreadGroup.on_start)."""
    try:
        deadline = asyncio.timeout(timeout)
        ctx.threads.on_start = functools.partial(_extend, deadline)
        try:
            async with deadline:  # routing (a model call, when configured) counts against it
                agent = await agents.resolve(agent_id, message, ctx)
                value = await agent.run(message, ctx)
        except TimeoutError:
            if not deadline.expired():
                raise  # the agent's own timeout (e.g. an HTTP call): transient, not ours
            ctx.cancel_event.set()  # a sync handler still running in its thread sees ctx.cancelled
            return TaskTimeout(f"Task exceeded timeout ({format_seconds(timeout)}s)")
        return coerce_result(value, agent.id)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0:
            return exc  # raised by the agent itself, nobody cancelled us: an ordinary failure
        raise
    except BaseException as exc:
        if not isinstance(exc, Exception | InputRequested):
            name = type(exc).__name__
            log.warning(
                "the agent of %s raised %s; only that request fails", ctx.request_id, name, exc_info=exc
            )
        return exc
    finally:
        ctx.threads.on_start = None


def _extend(deadline: asyncio.Timeout, waited: float) -> None:
    """A thread of the attempt waited `waited` s for the pool: move the deadline by as much."""
    when = deadline.when()
    if when is not None and not deadline.expired():
        with contextlib.suppress(RuntimeError):  # the attempt already left its deadline
            deadline.reschedule(when + waited)


@dataclass(eq=False)
class Attempt:
    """A claimed request being worked on by this worker."""

    claim: Claim
    store: Store
    agents: AgentRegistry
    settings: WorkerSettings
    clock: Clock
    rng: random.Random
    agent_id: str
    threads: ThreadGroup = field(default_factory=ThreadGroup)
    """Where the attempt's sync code runs (the worker's pool); it tells whether a thread outlived it."""
    ctx: RunContext = field(init=False)
    writer: EventWriter = field(init=False)
    task: asyncio.Task[Outcome] | None = None
    phase: Phase = Phase.RUNNING
    stop_reason: Outcome | None = None
    error: ErrorInfo | None = None
    """Why the attempt failed, once recorded as a retry or a failure."""
    started: float = field(default_factory=time.monotonic)
    """When the attempt started (its `completed` log line gives the duration)."""
    in_flight_label: str = ""
    """The agent label this attempt counts under in errand_in_flight while it runs."""

    def __post_init__(self) -> None:
        req = self.claim.request
        self.writer = EventWriter(
            self.store, req.id, self.claim.attempt, on_lease_lost=lambda: self.stop(Outcome.LEASE_LOST)
        )
        self.ctx = RunContext(
            request_id=req.id,
            user_id=req.user_id,
            session_id=req.session_id,
            metadata=dict(req.metadata),
            attempt=self.claim.attempt,
            agent_id=self.agent_id,
            sink=self.writer.sink,
            threads=self.threads,
            inputs=dict(req.inputs),
            input_state=req.input_state,
            now=self.clock.now,
        )

    @property
    def request_id(self) -> str:
        return self.claim.request.id

    def stop(self, reason: Outcome) -> None:
        """Stop a running attempt: the agent sees CancelledError (and ctx.cancelled, for sync
        handlers in threads), and the attempt writes nothing. Ignored while recording, unless
        the worker is shutting down."""
        if self.stop_reason is not None:
            return
        if self.phase is Phase.RECORDING and reason is not Outcome.ABANDONED:
            return
        self.stop_reason = reason
        self.ctx.cancel_event.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self) -> Outcome:
        """The attempt, traced (tracing on): the wait since it became runnable as
        `errand.queue_wait`, then `errand.attempt` around it, both continuing the request's
        stored trace context; the agent's model and tool calls nest inside."""
        req = self.claim.request
        ids = {"errand.request_id": req.id, "errand.attempt": self.claim.attempt}
        tracing.record(
            "errand.queue_wait",
            start=req.run_at,
            end=self.clock.now(),
            parent=req.trace_context,
            attributes=ids,
        )
        with tracing.span(
            "errand.attempt", kind="consumer", parent=req.trace_context, attributes=ids
        ) as span:
            outcome = await self._run()
            span.set_attributes({"errand.agent": self.agent_id, "errand.outcome": outcome.value})
            if self.error is not None:  # retried or failed: the attempt's span is an error
                tracing.fail(span, self.error.type, self.error.message)
        return outcome

    async def _run(self) -> Outcome:
        """claim -> run -> classify -> record; stopped attempts write nothing."""
        req = self.claim.request
        try:
            agent_id = req.agent or await self._routed_before()
            self.ctx.messages = await conversation_of(self.store, req)
            outcome = await run_agent(
                self.agents, agent_id, req.message, self.ctx, self.settings.timeout_for(agent_id)
            )
            self.agent_id = self.ctx.agent_id  # the routed agent, if a router chose one
            await self.writer.close()
            if self.stop_reason is None and self.threads.running and not isinstance(outcome, Result):
                outcome = await self._outwait_thread(outcome)
            if self.stop_reason is not None:
                return self.stop_reason
            self.phase = Phase.RECORDING
            return await self._record(outcome)
        except asyncio.CancelledError:
            self.writer.abandon()
            if self.stop_reason is None:
                raise  # not ours (the event loop is going away): let it propagate
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return self.stop_reason
        except LeaseLost:
            log.info(
                "attempt %d of %s lost its lease (taken over, or ended elsewhere); its outcome is dropped",
                self.claim.attempt,
                req.id,
                extra={"request_id": req.id},
            )
            return Outcome.LEASE_LOST
        except StoreUnavailable as exc:
            log.error(
                "could not record the outcome of %s (%s); it runs again after its lease expires",
                req.id,
                exc,
                extra={"request_id": req.id},
            )
            return Outcome.UNRECORDED

    async def _outwait_thread(self, outcome: BaseException) -> BaseException:
        """The attempt failed (timed out, usually) while its thread runs on, and a thread
        cannot be stopped: hold the request -- lease renewed, slot taken, nothing recorded, so
        no retry can start anywhere -- until the thread returns, for up to task_timeout more.
        A thread still running then fails the request for good: it is never run twice at once."""
        req = self.claim.request
        log.warning(
            "attempt %d of %s ended (%s) but its thread still runs; holding the request until it returns",
            self.claim.attempt,
            req.id,
            error_info(outcome).message,
        )
        note = Progress(None, STILL_RUNNING)
        try:
            await self.store.append_event(req.id, self.claim.attempt, "progress", note.to_dict(), note)
        except StoreUnavailable as exc:
            log.warning("could not note the running thread of %s: %s", req.id, exc)
        grace = self.settings.timeout_for(self.agent_id)
        with STRAY_THREADS.track_inprogress():
            try:
                async with asyncio.timeout(grace):
                    await self.threads.idle()
            except TimeoutError:
                log.error("request %s: attempt thread still running %ss later; failing it", req.id, grace)
                return PermanentError(
                    f"{error_info(outcome).message}; its thread was still running "
                    f"{format_seconds(grace)}s later, so it is not retried (it would run twice at once)"
                )
        return outcome

    async def _routed_before(self) -> str | None:
        """A retried request without an agent keeps the agent its first routed attempt got
        (the `routed` event, written right after `started`): asking the router again could
        land elsewhere. None: not routed yet (the registry routes, or picks the default)."""
        if self.claim.attempt == 1 or self.agents.router is None:
            return None
        for event in await self.store.events_since(self.request_id, 0, ROUTED_SCAN):
            if event.type == "routed" and isinstance(event.data.get("agent"), str):
                agent: str = event.data["agent"]
                return agent if agent in self.agents else None
        return None

    async def _record(self, outcome: Result | BaseException) -> Outcome:
        """A storable result completes the request; anything else is a failure to classify."""
        req = self.claim.request
        if isinstance(outcome, InputRequested):
            return await self._pause(outcome)
        if isinstance(outcome, TaskTimeout):
            TIMEOUTS.labels(agent_label(self.agent_id, self.agents)).inc()
        if isinstance(outcome, Result):
            refused = unstorable(outcome, self.settings.max_result_bytes)
            if refused is None:
                result = outcome
                await self._store_call(
                    lambda: self.store.finish(req.id, self.claim.attempt, Status.COMPLETED, result=result)
                )
                log.info(
                    "completed %s in %.3fs (attempt %d)",
                    req.id,
                    time.monotonic() - self.started,
                    self.claim.attempt,
                    extra={"request_id": req.id},
                )
                return Outcome.COMPLETED
            log.warning("request %s: %s", req.id, refused, extra={"request_id": req.id})
            outcome = refused
        return await self._record_failure(outcome)

    async def _pause(self, asked: InputRequested) -> Outcome:
        """The handler asked (`ctx.ask`): store the question and free the slot; the request
        waits in input_required and runs again from the start once answered. State that
        cannot be stored fails the request (it could never resume)."""
        req = self.claim.request
        try:
            await self._store_call(
                lambda: self.store.ask_input(req.id, self.claim.attempt, asked.ask, asked.state)
            )
        except InvalidRequest as exc:
            return await self._record_failure(PermanentError(f"cannot pause for input: {exc}"))
        log.info(
            "request %s asks for input %s (attempt %d); it waits without a worker",
            req.id,
            asked.ask.id,
            self.claim.attempt,
            extra={"request_id": req.id},
        )
        return Outcome.INPUT_REQUIRED

    async def _record_failure(self, outcome: BaseException) -> Outcome:
        """Classify the failure (engine/retry.py): a retry scheduled, or the request failed."""
        req = self.claim.request
        policy = self.settings.retry_for(self.agent_id)
        decision = decide(
            outcome,
            req.failures,
            policy,
            self.rng,
            max_attempts=req.max_attempts,
            no_delay=self.settings.no_retry_delay,
        )
        self.error = decision.error
        if decision.retry:
            run_at = self.clock.now() + decision.delay
            await self._store_call(
                lambda: self.store.retry_later(req.id, self.claim.attempt, run_at, decision.error)
            )
            log.warning(
                "attempt %d of %s failed (%s: %s); retry scheduled in %.2fs",
                self.claim.attempt,
                req.id,
                decision.error.type,
                brief(decision.error.message),
                decision.delay,
                exc_info=raised(outcome),
                extra={"request_id": req.id},
            )
            return Outcome.RETRIED
        await self._store_call(
            lambda: self.store.finish(req.id, self.claim.attempt, Status.FAILED, error=decision.error)
        )
        log.error(
            "failed %s after %d attempt(s) in %.3fs: %s: %s",
            req.id,
            self.claim.attempt,
            time.monotonic() - self.started,
            decision.error.type,
            brief(decision.error.message),
            exc_info=raised(outcome),
            extra={"request_id": req.id},
        )
        return Outcome.FAILED

    async def _store_call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Retry a recording write while the database is unavailable (it may be restarting),
        for up to settings.record_retry_seconds; the lease is renewed meanwhile."""
        deadline = time.monotonic() + self.settings.record_retry_seconds
        failures = 0
        while True:
            try:
                return await op()
            except StoreUnavailable as exc:
                failures += 1
                delay = _RECORD_RETRY.delay(failures, self.rng)
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "store unavailable while recording %s (%s); retrying in %.2fs",
                    self.request_id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

"""The worker against the real SQLite store: run, report, retry, time out, cancel, fence, drain."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from errand.agents.registry import AgentRegistry
from errand.clock import ManualClock, SystemClock, new_request_id
from errand.config import RetryPolicy, build_config
from errand.engine.settings import WorkerSettings
from errand.engine.worker import Worker
from errand.errors import LeaseLost, StoreUnavailable
from errand.models import Claim, Event, NewRequest, Request, Result, Status
from errand.store import open_store
from errand.store.base import Store
from tests.support import agents as handlers

H = "tests.support.agents"


def _registry(**options: dict[str, Any]) -> AgentRegistry:
    agents: list[dict[str, Any]] = [
        {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True},
        {"id": "steps", "handler": f"{H}:progress_steps"},
        {"id": "flaky", "handler": f"{H}:flaky"},
        {"id": "down", "handler": f"{H}:always_transient"},
        {"id": "permanent", "handler": f"{H}:permanent"},
        {"id": "slow", "handler": f"{H}:slow"},
        {"id": "cancellable", "handler": f"{H}:cancellable"},
        {"id": "sync-cancellable", "handler": f"{H}:sync_cancellable"},
        {"id": "gated", "handler": f"{H}:gated"},
        {"id": "sync", "handler": f"{H}:sync_handler"},
        {"id": "demo", "handler": "errand.agents.demo:run", "options": {"step_seconds": 0.01}},
        {"id": "self-cancel", "handler": f"{H}:raises_cancelled"},
        {"id": "sync-slow", "handler": f"{H}:sync_slow"},
    ]
    for agent in agents:
        agent.setdefault("options", options.get(agent["id"], {}))
    config = build_config({"keys": {"client": ["client-key-for-tests"]}, "agents": agents}, env={})
    return AgentRegistry.from_config(config)


def _settings(**overrides: Any) -> WorkerSettings:
    base: dict[str, Any] = {
        "concurrency": 8,
        "lease_seconds": 30.0,
        "poll_interval": 0.05,
        "task_timeout": 10.0,
        "retry": RetryPolicy(max_attempts=3, initial_delay=1.0, jitter=0.0),
        "no_retry_delay": True,
        "shutdown_grace": 0.5,
    }
    return WorkerSettings(**{**base, **overrides})


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[Store]:
    s = await open_store(sqlite_url, clock=clock, poll_interval=0.05)
    yield s
    await s.close()


async def submit(store: Store, message: str = "hello", agent: str | None = None, **kw: Any) -> Request:
    new = NewRequest(id=new_request_id(), owner="owner-1", user_id="u1", message=message, agent=agent, **kw)
    req, created = await store.submit(new)
    assert created
    return req


async def wait_for(
    store: Store, request_id: str, done: Callable[[Request], bool], timeout: float = 5.0
) -> Request:
    """Wait on the store's change notifications (no sleeping poll) until `done(request)`."""
    deadline = time.monotonic() + timeout
    while True:
        req = await store.get(request_id)
        if done(req):
            return req
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting; request is {req.status} progress={req.progress}"
        await store.wait_for_change(request_id, req.seq, left)


async def event_types(store: Store, request_id: str) -> list[str]:
    events: list[Event] = await store.events_since(request_id)
    return [e.type for e in events]


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll a plain in-memory condition (the worker's running count, an agent's record)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - no event to wait on for these test probes
            await asyncio.sleep(0.01)


class Running:
    """A worker running in the background (run(stop)) for the length of a test."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.run(self.stop))
        await asyncio.sleep(0)
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5.0)


def worker(store: Store, clock: Any, registry: AgentRegistry | None = None, **settings: Any) -> Worker:
    return Worker(store, registry or _registry(), _settings(**settings), clock=clock)


# -- happy paths ----------------------------------------------------------------------------------
async def test_echo_completes_with_agent_and_duration(sqlite_url: str) -> None:
    clock = SystemClock()
    store = await open_store(sqlite_url, clock=clock, poll_interval=0.05)
    try:
        req = await submit(store, "ping")
        await worker(store, clock).run_until_idle()
        done = await store.get(req.id)
        assert done.status is Status.COMPLETED
        assert done.result == Result("ping", "echo")
        assert done.attempt == 1 and done.failures == 0
        assert done.duration_ms is not None and done.duration_ms >= 0
        assert done.started_at is not None and done.completed_at is not None
        assert done.started_at <= done.completed_at
        assert await event_types(store, req.id) == ["created", "started", "completed"]
    finally:
        await store.close()


async def test_progress_and_content_events_are_written_in_order(store: Store, clock: ManualClock) -> None:
    req = await submit(store, "report", agent="steps")
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.COMPLETED
    assert done.result is not None and done.result.text == "done: report"
    assert done.result.agent == "steps" and done.result.extra == {"usage": {"steps": 3}}
    assert done.progress is not None and done.progress.message == "step 3" and done.progress.step == 3
    events: list[Event] = await store.events_since(req.id)
    assert [e.type for e in events[:5]] == ["created", "started", "progress", "progress", "progress"]
    assert {e.type for e in events[5:-1]} == {"content"}
    progress = [e.data["message"] for e in events if e.type == "progress"]
    assert progress == ["step 1", "step 2", "step 3"]
    content = "".join(e.data["text"] for e in events if e.type == "content")
    assert content == "Hello, world"  # adjacent deltas may be merged, never reordered or lost
    assert events[-1].type == "completed"  # flushed before the terminal write
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_sync_handler_runs_in_a_thread(store: Store, clock: ManualClock) -> None:
    req = await submit(store, "shout", agent="sync")
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.COMPLETED
    assert done.result is not None and done.result.text == "SHOUT"
    assert done.result.extra["thread"] != threading.current_thread().name
    assert done.progress is not None and done.progress.message == "halfway, from a thread"


async def test_demo_agent_reports_steps_and_answers(store: Store, clock: ManualClock) -> None:
    req = await submit(store, "What changed in EU AI regulation this year?", agent="demo")
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.COMPLETED and done.result is not None
    assert "What changed in EU AI regulation this year?" in done.result.text
    assert done.result.extra["demo"] is True
    types = await event_types(store, req.id)
    assert types.count("progress") == 7 and "content" in types


async def test_unknown_agent_fails_at_once(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="nobody")
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.FAILED and done.attempt == 1
    assert done.error is not None and done.error.type == "ResourceNotFound"
    assert "nobody" in done.error.message


# -- retries and timeouts -------------------------------------------------------------------------
async def test_transient_failure_is_retried_then_succeeds(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="flaky", max_attempts=3)
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.COMPLETED
    assert done.result is not None and done.result.text == "ok on attempt 3"
    assert (done.attempt, done.failures) == (3, 2)
    assert (await event_types(store, req.id)).count("retry") == 2


async def test_retry_waits_for_the_backoff_delay(store: Store, clock: ManualClock) -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=2.0, backoff_factor=2.0, jitter=0.0)
    w = worker(store, clock, _registry(flaky={"succeed_on": 2}), retry=policy, no_retry_delay=False)
    req = await submit(store, agent="flaky")
    await w.run_until_idle()
    waiting = await store.get(req.id)
    assert waiting.status is Status.PROCESSING and waiting.failures == 1
    assert waiting.run_at == pytest.approx(clock.now() + 2.0)
    assert waiting.error is None or waiting.error.type == "TransientError"
    clock.advance(1.0)
    await w.run_until_idle()  # not due yet: nothing claimable
    assert (await store.get(req.id)).attempt == 1
    clock.advance(1.5)
    await w.run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.COMPLETED and done.attempt == 2


async def test_permanent_error_fails_at_once(store: Store, clock: ManualClock) -> None:
    req = await submit(store, "{oops", agent="permanent", max_attempts=5)
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.FAILED and done.attempt == 1
    assert done.error is not None
    assert (done.error.type, done.error.message, done.error.retryable) == (
        "ValueError",
        "cannot parse '{oops'",
        False,
    )
    assert done.result is None


async def test_exhausted_retries_fail_with_the_last_error(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="down", max_attempts=3)
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.FAILED and done.attempt == 3
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("TransientError", "still down (attempt 3)")


async def test_task_timeout_is_retried_then_fails(store: Store, clock: ManualClock) -> None:
    registry = _registry(slow={"seconds": 30})
    w = worker(store, clock, registry, task_timeout=0.2)
    req = await submit(store, agent="slow", max_attempts=2)
    started = time.monotonic()
    await w.run_until_idle()
    assert time.monotonic() - started < 3.0
    done = await store.get(req.id)
    assert done.status is Status.FAILED and done.attempt == 2
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("TaskTimeout", "Task exceeded timeout (0.2s)")
    assert done.error.retryable


async def test_a_timed_out_sync_handler_is_told_to_stop(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="sync-slow", max_attempts=1)
    await worker(store, clock, task_timeout=0.1).run_until_idle()
    done = await store.get(req.id)
    assert done.error is not None and done.error.message == "Task exceeded timeout (0.1s)"
    await _until(lambda: req.id in handlers.OBSERVED_CANCEL)  # the thread saw ctx.cancelled


async def test_an_agent_raising_cancelled_error_itself_fails_the_request(
    store: Store, clock: ManualClock
) -> None:
    req = await submit(store, agent="self-cancel", max_attempts=3)
    w = worker(store, clock)
    await w.run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.FAILED and done.attempt == 1
    assert done.error is not None and done.error.type == "CancelledError"


# -- cancellation, leases, shutdown ---------------------------------------------------------------
@pytest.mark.parametrize("agent", ["cancellable", "sync-cancellable"])
async def test_cancel_stops_a_running_attempt_within_a_second(
    store: Store, clock: ManualClock, agent: str
) -> None:
    req = await submit(store, agent=agent)
    async with Running(worker(store, clock, poll_interval=0.5)) as w:
        await wait_for(store, req.id, lambda r: r.progress is not None)
        cancelled_at = time.monotonic()
        _, how = await store.request_cancel(req.id)
        assert how == "cooperative"
        await _until(lambda: req.id in handlers.OBSERVED_CANCEL)
        assert handlers.OBSERVED_CANCEL[req.id] - cancelled_at < 1.0
        await _until(lambda: not w.running)
    done = await store.get(req.id)
    assert done.status is Status.CANCELLED and done.result is None and done.error is None
    types = await event_types(store, req.id)
    assert types[-1] == "cancelled" and "completed" not in types and "failed" not in types


async def test_stale_worker_writes_nothing(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="gated")
    async with Running(worker(store, clock)) as w:
        first = await wait_for(store, req.id, lambda r: r.progress is not None)
        assert first.attempt == 1
        clock.advance(31)  # worker 1 looks dead: its lease expired
        assert len(await store.requeue_expired()) == 1
        claims: list[Claim] = await store.claim("worker-2", 1, 30)
        (takeover,) = claims
        assert takeover.attempt == 2
        handlers.release(req.id)  # the stale attempt now returns a result...
        await _until(lambda: not w.running)
    after = await store.get(req.id)
    assert after.status is Status.PROCESSING and after.attempt == 2 and after.result is None
    assert "completed" not in await event_types(store, req.id)
    final = await store.finish(req.id, 2, Status.COMPLETED, result=Result("by worker 2"))
    assert final.result is not None and final.result.text == "by worker 2"


async def test_heartbeat_stops_an_attempt_that_was_taken_over(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="gated")
    async with Running(worker(store, clock)) as w:
        await wait_for(store, req.id, lambda r: r.progress is not None)
        clock.advance(31)
        await store.requeue_expired()
        await store.claim("worker-2", 1, 30)
        await w.heartbeat()  # reports the lease lost: the attempt is stopped
        await _until(lambda: req.id in handlers.OBSERVED_CANCEL and not w.running, timeout=1.0)
    with pytest.raises(LeaseLost):
        await store.append_event(req.id, 1, "progress", {})
    assert (await store.get(req.id)).attempt == 2


async def test_shutdown_leaves_unfinished_attempts_for_takeover(store: Store, clock: ManualClock) -> None:
    req = await submit(store, agent="gated")
    w = worker(store, clock, shutdown_grace=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await wait_for(store, req.id, lambda r: r.progress is not None)
    stop.set()
    await asyncio.wait_for(task, 3.0)
    assert w.running == 0 and req.id in handlers.OBSERVED_CANCEL
    left = await store.get(req.id)
    assert left.status is Status.PROCESSING and left.attempt == 1  # still leased, nothing written
    clock.advance(31)
    assert len(await store.requeue_expired()) == 1
    handlers.release(req.id)
    await worker(store, clock).run_until_idle()
    done = await store.get(req.id)
    assert done.status is Status.COMPLETED and done.attempt == 2
    assert done.result is not None and done.result.text == "released at attempt 2"


class FinishFailsTwice:
    """The real store, except that finish() raises StoreUnavailable twice (a DB restart)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def finish(self, *args: Any, **kwargs: Any) -> Request:
        if self.failures < 2:
            self.failures += 1
            raise StoreUnavailable("database is restarting")
        return await self._store.finish(*args, **kwargs)


async def test_outcome_is_recorded_after_the_store_comes_back(store: Store, clock: ManualClock) -> None:
    flaky_store = FinishFailsTwice(store)
    req = await submit(store, "kept")
    w = Worker(flaky_store, _registry(), _settings(), clock=clock)
    await w.run_until_idle()
    done = await store.get(req.id)
    assert flaky_store.failures == 2
    assert done.status is Status.COMPLETED and done.result is not None and done.result.text == "kept"


# -- scheduling -----------------------------------------------------------------------------------
async def test_concurrency_limit_is_respected(store: Store, clock: ManualClock) -> None:
    handlers.CONCURRENCY.update(now=0, peak=0)
    reqs = [await submit(store, agent="slow") for _ in range(10)]
    w = worker(store, clock, _registry(slow={"seconds": 0.05}), concurrency=3)
    await w.run_until_idle()
    assert handlers.CONCURRENCY["peak"] == 3
    for req in reqs:
        assert (await store.get(req.id)).status is Status.COMPLETED


async def test_idle_worker_picks_up_a_submit_at_once(store: Store, clock: ManualClock) -> None:
    async with Running(worker(store, clock, poll_interval=5.0)):
        await asyncio.sleep(0.1)  # idle: the claim loop is asleep
        started = time.monotonic()
        req = await submit(store, "fast")
        await wait_for(store, req.id, lambda r: r.is_terminal, timeout=2.0)
        assert time.monotonic() - started < 0.5  # woken by the submit, not by a 5 s poll


async def test_a_freed_slot_is_refilled_at_once(store: Store, clock: ManualClock) -> None:
    reqs = [await submit(store, agent="slow") for _ in range(4)]
    async with Running(
        worker(store, clock, _registry(slow={"seconds": 0.05}), concurrency=1, poll_interval=5.0)
    ):
        started = time.monotonic()
        for req in reqs:
            await wait_for(store, req.id, lambda r: r.is_terminal, timeout=3.0)
        assert time.monotonic() - started < 1.5  # four 50 ms runs back to back, no 5 s polls


async def test_run_until_idle_drains_500_requests(store: Store, clock: ManualClock) -> None:
    reqs = await asyncio.gather(*(submit(store, f"m{i}") for i in range(500)))
    w = worker(store, clock, concurrency=64)
    await asyncio.wait_for(w.run_until_idle(), 30.0)
    assert w.running == 0
    page = await store.list(owner=None, user_id=None, status=Status.COMPLETED, limit=1000)
    assert len(page.requests) == 500
    sample = await store.get(reqs[123].id)
    assert sample.result is not None and sample.result.text == "m123"
    assert await store.claim("anyone", 10, 30) == []


async def test_run_until_idle_returns_at_once_when_empty(store: Store, clock: ManualClock) -> None:
    started = time.monotonic()
    await worker(store, clock, poll_interval=5.0).run_until_idle()
    assert time.monotonic() - started < 0.5

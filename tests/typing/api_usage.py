"""SDK usage that `mypy --strict` must accept: type-checked in CI, never executed by pytest."""

from __future__ import annotations

import asyncio
from typing import Any

from errand.client import (
    AgentInfo,
    AsyncClient,
    AttemptInfo,
    CancelResult,
    ChatOptions,
    Client,
    DeliveryAttempt,
    DeliveryInfo,
    Formation,
    RequestHandle,
    RequestList,
    RequestStatus,
    StreamEvent,
)
from errand.errors import Conflict, ErrandError, NotFound, RequestExpired
from errand.models import Progress, Status


def show(progress: Progress) -> None:
    print(progress.percent, progress.message, progress.step, progress.total_steps)


def sync_usage() -> str | None:
    with Client("http://localhost:8001", client_key="ck", user_id="u1", timeout=10.0) as c:
        handle: RequestHandle = c.chat_async("Complex task", webhook_url=None, agent_id="researcher")
        est: float | None = handle.estimated_seconds
        print(handle.id, handle.status, handle.poll_url, handle.delivery, est)

        st: RequestStatus = c.get_request(handle.id)
        if st.is_complete and st.result is not None:
            return st.result.text
        st = c.wait(handle.id, timeout=600, on_progress=show)
        st = c.wait(handle.id, timeout=5.0, on_progress=print, poll=2.0)
        if st.error is not None:
            kind: str = st.error.type
            retry: bool = st.error.retryable
            print(kind, st.error.message, retry)
        done: bool = st.status == "completed"
        assert done is (st.status is Status.COMPLETED)
        ms: int | None = st.duration_ms
        print(done, ms, st.attempts, st.created_at, st.started_at, st.completed_at, st.raw.get("kind"))

        quick = c.chat("quick question", session_id="s1", metadata={"k": 1}, idempotency_key="key-1")
        if not quick.is_complete:  # the server answered 202: the work outlived the sync wait
            quick = c.wait(quick.id)

        opts: ChatOptions = {"agent_id": "demo", "threshold_seconds": 5.0}
        c.chat("with options", mode="auto", **opts)

        tried: tuple[AttemptInfo, ...] = c.attempts(handle.id)
        for one in tried:
            print(one.attempt, one.outcome, one.error.message if one.error else None, one.traceback)

        st = c.wait(handle.id)
        while st.needs_input and st.input_request is not None:  # wait() returns on input_required
            question: str = st.input_request.prompt
            schema: dict[str, Any] | None = st.input_request.schema
            expires: float | None = st.input_request.expires_at
            print(question, schema, expires)
            answered: dict[str, Any] = c.respond(handle.id, {"approved": True})
            c.respond(handle.id, "yes", input_id=st.input_request.id)
            print(answered["accepted"], answered["status"])
            st = c.wait(handle.id)

        cancelled: CancelResult = c.cancel(handle.id)
        how: str | None = cancelled.cancellation
        print(cancelled.request_id, cancelled.status is Status.CANCELLED, how)

        for event in c.events(handle.id):
            seq: int = event.id
            print(seq, event.type, event.data.get("percent"), event.is_terminal)
        so_far: list[StreamEvent] = list(c.events(handle.id, after=3, follow=False, reconnects=2))
        print(len(so_far))

        deliveries: tuple[DeliveryInfo, ...] = c.deliveries(handle.id)
        for d in deliveries:
            tries: tuple[DeliveryAttempt, ...] = d.attempts
            print(d.webhook_id, d.url, d.state, d.next_attempt_at, [(t.status_code, t.error) for t in tries])
        again: DeliveryInfo = c.redeliver(handle.id)
        print(again.webhook_id)
        agents: tuple[AgentInfo, ...] = c.agents()
        print([(a.id, a.default, a.kind, a.tools, a.expected_seconds, a.description) for a in agents])

        page: RequestList = c.list_requests(status="completed", limit=10)
        for item in page:
            print(item.id, item.status)
        if page.next_cursor:
            c.list_requests(cursor=page.next_cursor)

        fired = c.fire_trigger("github-issue", {"issue": {"title": "Bug"}}, use_async=True)
        if isinstance(fired, RequestHandle):
            c.wait(fired.id)
        else:
            print(fired.result)
        print(c.health())
        return quick.result.text if quick.result else None


def errors_usage(f: Formation) -> None:
    try:
        f.get_request("req_missing")
    except NotFound as exc:
        print(exc.message, exc.details, exc.code)
    except (Conflict, RequestExpired):
        pass
    except ErrandError as exc:
        print(exc.transient)


async def async_usage() -> None:
    async with AsyncClient(formation_id="my-assistant", admin_key="ak") as c:
        handle = await c.chat_async("Complex task")

        async def on_progress(p: Progress) -> None:
            await asyncio.sleep(0)

        st: RequestStatus = await c.wait(handle.id, timeout=60, on_progress=on_progress)
        st = await c.wait(handle.id, on_progress=show)
        print(st.result.text if st.result else st.error)
        if st.needs_input:
            reply: dict[str, Any] = await c.respond(handle.id, 42)
            await c.respond(handle.id, 42, input_id=reply["input_id"])
        page: RequestList = await c.list_requests()
        print([(a.attempt, a.outcome, a.duration_ms) for a in await c.attempts(handle.id)])
        print(len(page), (await c.cancel(handle.id)).cancellation, await c.health())
        async for event in c.events(handle.id, after=None):
            if event.is_terminal:
                print(event.data)
        print(await c.deliveries(handle.id), await c.redeliver(handle.id), await c.agents())
        again = await c.fire_trigger("nightly", {}, use_async=False, session_id="s")
        print(again.id, again.status)

"""Questions and answers (`input_required`): ask_input, answer_input, expire_inputs, part of the
Store contract run unchanged against every backend (StoreContract inherits these tests)."""

from __future__ import annotations

import asyncio

import pytest

from errand.clock import ManualClock
from errand.errors import InputAlreadyAnswered, InputNotOutstanding, InvalidRequest, LeaseLost, SessionBusy
from errand.models import INPUT_TIMEOUT, AttemptOutcome, InputAsk, Request, Status, to_document
from errand.store.base import Store
from tests.store.contract import HOOK, LEASE, Reopen, new, running

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def question(
    n: int = 1, clock: ManualClock | None = None, timeout: float | None = None, **kw: str
) -> InputAsk:
    expires = None if clock is None or timeout is None else clock.now() + timeout
    return InputAsk(f"inp_{n}", f"question {n}?", SCHEMA, expires, kw.get("on_timeout", "fail"), 0.0)


async def asking(store: Store, clock: ManualClock | None = None, **fields: object) -> Request:
    req, attempt = await running(store, **fields)
    return await store.ask_input(req.id, attempt, question(1, clock, 60 if clock else None), {"kept": [1]})


class InputContract:
    """A request asks, waits without a lease, and resumes, expires or is cancelled."""

    async def test_ask_waits_without_a_lease_and_announces_it(self, store: Store) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        asked = await store.ask_input(req.id, attempt, question(), {"conversation": ["hi"]})
        assert asked.status is Status.INPUT_REQUIRED and not asked.is_terminal
        assert asked.input_request == question() and asked.input_state == {"conversation": ["hi"]}
        doc = to_document(await store.get(req.id))
        assert doc["status"] == "input_required"
        assert doc["input_request"] == {
            "id": "inp_1",
            "prompt": "question 1?",
            "schema": SCHEMA,
            "expires_at": None,
        }
        last = (await store.events_since(req.id))[-1]
        assert last.type == "input_required" and last.data["input_request"]["id"] == "inp_1"
        [record] = await store.list_attempts(req.id)
        assert record.outcome is AttemptOutcome.INPUT_REQUIRED and record.ended_at is not None
        assert await store.claim("w2", 5, LEASE) == []  # not claimable while waiting
        assert await store.heartbeat("w1", {req.id: attempt}, LEASE) == {req.id}  # the lease is gone
        [item] = await store.claim_outbox("d1", 5, LEASE)
        assert item.request_id == req.id and item.body["status"] == "input_required"
        assert item.body["input_request"]["id"] == "inp_1"

    async def test_a_stale_attempt_cannot_ask(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store)
        clock.advance(LEASE + 1)
        assert len(await store.requeue_expired()) == 1
        [again] = await store.claim("w2", 1, LEASE)
        with pytest.raises(LeaseLost):
            await store.ask_input(req.id, attempt, question())
        assert (await store.get(req.id)).status is Status.PROCESSING
        await store.ask_input(req.id, again.attempt, question())  # the holder may
        with pytest.raises(LeaseLost):  # and not twice: it no longer holds a lease
            await store.ask_input(req.id, again.attempt, question(2))

    async def test_an_unknown_on_timeout_is_refused(self, store: Store) -> None:
        req, attempt = await running(store)
        with pytest.raises(InvalidRequest):
            await store.ask_input(req.id, attempt, InputAsk("inp_1", "?", on_timeout="shrug"))
        assert (await store.get(req.id)).status is Status.PROCESSING

    async def test_answer_resumes_it_pending_with_its_answers_in_ask_order(self, store: Store) -> None:
        asked = await asking(store, priority=2)
        resumed, changed = await store.answer_input(asked.id, "inp_1", {"ok": True})
        assert changed and resumed.status is Status.PENDING and resumed.input_request is None
        assert resumed.inputs == {"inp_1": {"ok": True}} and resumed.priority == 2
        assert (await store.events_since(asked.id))[-1].type == "input_received"
        [claim] = await store.claim("w2", 1, LEASE)
        assert claim.request.id == asked.id and claim.attempt == 2
        assert claim.request.inputs == {"inp_1": {"ok": True}} and claim.request.input_state == {"kept": [1]}
        await store.ask_input(asked.id, claim.attempt, question(2))
        again, _ = await store.answer_input(asked.id, "inp_2", "second")
        assert list(again.inputs.items()) == [("inp_1", {"ok": True}), ("inp_2", "second")]

    async def test_an_answer_keeps_the_message_that_sent_it(self, store: Store) -> None:
        asked = await asking(store)
        resumed, _ = await store.answer_input(asked.id, "inp_1", {"ok": True}, "msg-a")
        assert resumed.input_messages == {"msg-a": "inp_1"} and resumed.inputs == {"inp_1": {"ok": True}}
        [claim] = await store.claim("w2", 1, LEASE)
        await store.ask_input(asked.id, claim.attempt, question(2))
        again, _ = await store.answer_input(asked.id, "inp_2", "second")  # over HTTP: no message id
        assert again.input_messages == {"msg-a": "inp_1"}  # the earlier one is kept with its answer
        assert list(again.inputs) == ["inp_1", "inp_2"]
        assert (await store.get(asked.id)).input_messages == {"msg-a": "inp_1"}

    async def test_answers_are_idempotent_per_input_id(self, store: Store) -> None:
        asked = await asking(store)
        await store.answer_input(asked.id, "inp_1", {"ok": True})
        same, changed = await store.answer_input(asked.id, "inp_1", {"ok": True})
        assert not changed and same.status is Status.PENDING
        with pytest.raises(InputAlreadyAnswered):
            await store.answer_input(asked.id, "inp_1", {"ok": False})
        with pytest.raises(InputNotOutstanding):
            await store.answer_input(asked.id, "inp_9", 1)

    async def test_only_the_outstanding_question_can_be_answered(self, store: Store) -> None:
        req, _ = await running(store)
        with pytest.raises(InputNotOutstanding):
            await store.answer_input(req.id, "inp_1", 1)
        asked = await asking(store)
        with pytest.raises(InputNotOutstanding):
            await store.answer_input(asked.id, "inp_2", 1)

    async def test_concurrent_answers_write_once(self, store: Store, reopen: Reopen) -> None:
        other = await reopen()
        asked = await asking(store)
        outcomes = await asyncio.gather(
            *(
                s.answer_input(asked.id, "inp_1", {"ok": n % 2 == 0})
                for n, s in enumerate([store, other] * 3)
            ),
            return_exceptions=True,
        )
        wrote = [o for o in outcomes if isinstance(o, tuple) and o[1]]
        assert len(wrote) == 1
        winner = wrote[0][0].inputs["inp_1"]
        for o in outcomes:
            assert isinstance(o, tuple | InputAlreadyAnswered)
            if isinstance(o, tuple):
                assert o[0].inputs["inp_1"] == winner
        events = [e.type for e in await store.events_since(asked.id)]
        assert events.count("input_received") == 1

    async def test_cancel_while_waiting_then_an_answer_is_refused(self, store: Store) -> None:
        asked = await asking(store, webhook_url=HOOK)
        cancelled, how = await store.request_cancel(asked.id)
        assert cancelled.status is Status.CANCELLED and how == "immediate"
        with pytest.raises(InputNotOutstanding):
            await store.answer_input(asked.id, "inp_1", {"ok": True})
        bodies = [i.body["status"] for i in await store.claim_outbox("d1", 5, LEASE)]
        assert sorted(bodies) == ["cancelled", "input_required"]

    @pytest.mark.parametrize(("on_timeout", "ends"), [("fail", Status.FAILED), ("cancel", Status.CANCELLED)])
    async def test_expiry_ends_it_by_on_timeout_once(
        self, store: Store, clock: ManualClock, reopen: Reopen, on_timeout: str, ends: Status
    ) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        await store.ask_input(req.id, attempt, question(1, clock, 30, on_timeout=on_timeout))
        assert await store.expire_inputs() == []
        clock.advance(31)
        other = await reopen()
        first, second = await asyncio.gather(store.expire_inputs(), other.expire_inputs())
        ended = first + second
        assert [r.id for r in ended] == [req.id] and ended[0].status is ends
        assert ended[0].error is not None and ended[0].error.type == INPUT_TIMEOUT
        assert await store.expire_inputs() == []
        doc = to_document(await store.get(req.id))
        assert doc["status"] == ends.value
        assert doc.get("error", {}).get("type", INPUT_TIMEOUT) == INPUT_TIMEOUT
        events = [e.type for e in await store.events_since(req.id)]
        assert events.count(ends.value) == 1
        with pytest.raises(InputNotOutstanding):
            await store.answer_input(req.id, "inp_1", {"ok": True})

    async def test_an_answered_question_does_not_expire(self, store: Store, clock: ManualClock) -> None:
        asked = await asking(store, clock)
        await store.answer_input(asked.id, "inp_1", {"ok": True})
        clock.advance(120)
        assert await store.expire_inputs() == []
        assert (await store.get(asked.id)).status is Status.PENDING

    async def test_waiting_for_input_is_counted_in_the_queue(self, store: Store) -> None:
        asked = await asking(store, agent="a1")
        stats = await store.queue_stats()
        assert stats.depth.get(("input_required", "a1")) == 1
        assert ("processing", "a1") not in stats.depth
        await store.answer_input(asked.id, "inp_1", {"ok": True})
        assert (await store.queue_stats()).depth.get(("pending", "a1")) == 1

    async def test_a_waiting_request_keeps_its_session_busy(self, store: Store) -> None:
        asked = await asking(store, session_id="s1")
        with pytest.raises(SessionBusy):
            await store.submit(new(session_id="s1", on_busy="reject"))
        held, _ = await store.submit(new(session_id="s1", on_busy="enqueue"))
        assert held.waiting_on == "session"
        await store.answer_input(asked.id, "inp_1", {"ok": True})
        [claim] = await store.claim("w2", 5, LEASE)  # the resumed one, not the held one
        assert claim.request.id == asked.id
        await store.finish(asked.id, claim.attempt, Status.COMPLETED)
        [nxt] = await store.claim("w2", 5, LEASE)
        assert nxt.request.id == held.id

    async def test_interrupt_cancels_a_waiting_request(self, store: Store) -> None:
        asked = await asking(store, session_id="s1")
        await store.submit(new(session_id="s1", on_busy="interrupt"))
        gone = await store.get(asked.id)
        assert gone.status is Status.CANCELLED and to_document(gone)["cancel_reason"] == "superseded"

"""`Store.set_webhook`: the webhook URL of an unfinished request can change until it ends (an A2A
push-notification config set or deleted after the send); part of the Store contract, run
unchanged against every backend (StoreContract inherits these tests)."""

from __future__ import annotations

import pytest

from errand.errors import Conflict, NotFound
from errand.models import Result, Status
from errand.store.base import Store
from tests.store.contract import HOOK, LEASE, new, running

OTHER = "https://hooks.example.com/other"


class WebhookContract:
    """set_webhook: set or removed until the terminal write, which delivers to the URL then set."""

    async def test_a_webhook_set_while_running_gets_the_terminal_delivery(self, store: Store) -> None:
        req, attempt = await running(store)
        changed = await store.set_webhook(req.id, OTHER)
        assert changed.webhook_url == OTHER
        assert (await store.get(req.id)).webhook_url == OTHER
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
        [item] = await store.claim_outbox("d1", 10, LEASE)
        assert (item.request_id, item.url, item.body["status"]) == (req.id, OTHER, "completed")

    async def test_a_removed_webhook_delivers_nothing(self, store: Store) -> None:
        req, _ = await store.submit(new(webhook_url=HOOK))
        assert (await store.set_webhook(req.id, None)).webhook_url is None
        await store.request_cancel(req.id)
        assert await store.claim_outbox("d1", 10, LEASE) == []

    async def test_an_ended_request_keeps_its_webhook(self, store: Store) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
        with pytest.raises(Conflict):
            await store.set_webhook(req.id, OTHER)
        assert (await store.get(req.id)).webhook_url == HOOK

    async def test_an_unknown_request_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.set_webhook("req_missing000000000000", OTHER)

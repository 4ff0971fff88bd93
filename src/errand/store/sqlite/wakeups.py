"""Wake-ups of the SQLite backend: in-process waiters woken after each commit, and the same hints
sent to (and received from) the other processes on the file through `notify`.

The writer calls the `after_*` methods on the event loop once a write is committed. The flags
are sticky `asyncio.Event`s (a wake-up before the wait counts); change watchers are futures per
request. Everything here is a hint: waits return within `poll_interval` so callers re-check.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from errand.clock import Clock
from errand.models import Delivery, Event, Request, Status
from errand.store.sqlite.notify import Notifier


class Wakeups:
    """The waiters of one SqliteStore and its notifier (None when there is none)."""

    def __init__(self, clock: Clock, poll_interval: float) -> None:
        self.work = asyncio.Event()
        self.cancels = asyncio.Event()
        self.outbox = asyncio.Event()
        self._clock = clock
        self._poll = poll_interval
        self._watchers: dict[str, set[asyncio.Future[None]]] = {}
        self._notifier: Notifier | None = None

    def start_notifier(self, db_path: str) -> bool:
        """Bind this process's socket beside the file; True when other processes can wake us."""
        self._notifier = Notifier.start(db_path, self._on_remote)
        return self._notifier is not None

    @property
    def change_poll(self) -> float:
        """How often a change waiter re-reads its row on its own. With the notifier, every commit
        in any process wakes it, so the re-read is only a safety net against a lost datagram and
        can be rarer: 1,000 idle event streams then cost a tenth of the reads."""
        if self._notifier is not None:
            return max(self._poll, min(10 * self._poll, 5.0))
        return self._poll

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Wait for a sticky event (set before we waited counts) and consume it."""
        if not event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(0.0, min(timeout, self._poll)))
        event.clear()

    def watch(self, request_id: str) -> asyncio.Future[None]:
        """A future resolved at the next commit that changes the request."""
        watch: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(request_id, set()).add(watch)
        return watch

    def unwatch(self, request_id: str, watch: asyncio.Future[None]) -> None:
        watchers = self._watchers.get(request_id)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._watchers[request_id]

    async def wait_for_change(
        self, request_id: str, after_seq: int, timeout: float, read_seq: Callable[[], Awaitable[int]]
    ) -> bool:
        """True once seq > after_seq, False at timeout (Store.wait_for_change). The watch is
        registered before each read (`read_seq`), so an in-process commit between read and wait
        still wakes us; other processes' commits wake us through the notifier, or are caught by
        re-reading (see change_poll)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            watch = self.watch(request_id)
            try:
                if await read_seq() > after_seq:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                await asyncio.wait({watch}, timeout=min(remaining, self.change_poll))
            finally:
                self.unwatch(request_id, watch)

    # -- after a commit -----------------------------------------------------------------------
    def after_submit(self, outcome: tuple[Request, bool]) -> None:
        request, created = outcome
        if created:
            self.work.set()
            self._changed(request.id)
            # a session's submit may have interrupted (cancelled) its running request
            cancel = "x" if request.session_id is not None else ""
            if cancel:
                self.cancels.set()
            self._tell_others("w" + cancel, [request.id])

    def after_requests(self, requests: list[Request]) -> None:
        """These requests changed: wake their watchers, and the worker or dispatcher loops when
        the change made work runnable or a webhook due."""
        now = self._clock.now()
        flags = ""
        for req in requests:
            self._changed(req.id)
            if req.is_terminal and req.session_id is not None:  # its session's next may run
                self.work.set()
                flags += "w"
            waiting = req.status is Status.INPUT_REQUIRED  # announced by webhook, not runnable
            if (req.is_terminal or waiting) and req.webhook_url:
                self.outbox.set()
                flags += "o"
            elif not req.is_terminal and not waiting and req.run_at <= now:
                self.work.set()
                flags += "w"
        self._tell_others(flags, [req.id for req in requests])

    def after_request(self, request: Request) -> None:
        self.after_requests([request])

    def after_claim(self, requests: list[Request]) -> None:
        for req in requests:
            self._changed(req.id)
        self._tell_others("", [req.id for req in requests])

    def after_event(self, event: Event) -> None:
        self._changed(event.request_id)
        self._tell_others("", [event.request_id])

    def after_cancel(self, outcome: tuple[Request, str]) -> None:
        self.cancels.set()
        self._tell_others("x")
        self.after_requests([outcome[0]])

    def after_fire(self, outcome: tuple[object, Request | None, Request | None]) -> None:
        """A schedule fired: its previous firing may be cancelled, a new request submitted."""
        _, cancelled, created = outcome
        if cancelled is not None:
            self.after_cancel((cancelled, "cooperative"))
        if created is not None:
            self.after_submit((created, True))

    def after_redelivery(self, _: Delivery) -> None:
        self.outbox.set()
        self._tell_others("o")

    def close(self) -> None:
        """Send the queued hints, stop listening, and release every waiter (the store closed).
        Call it after the writer stopped, so the last commits' wake-ups are sent first."""
        if self._notifier is not None:
            self._notifier.close()
        for event in (self.work, self.cancels, self.outbox):
            event.set()
        for request_id in list(self._watchers):
            self._changed(request_id)

    # -- other processes ----------------------------------------------------------------------
    def _tell_others(self, flags: str, ids: list[str] | None = None) -> None:
        """The same wake-ups for the other processes on this file (coalesced per loop tick)."""
        if self._notifier is not None and (flags or ids):
            self._notifier.notify(flags, ids or ())

    def _on_remote(self, flags: str, ids: list[str]) -> None:
        """A wake-up from another process: set what its local commit would have set here."""
        everything = "a" in flags
        if everything or "w" in flags:
            self.work.set()
        if everything or "x" in flags:
            self.cancels.set()
        if everything or "o" in flags:
            self.outbox.set()
        for request_id in list(self._watchers) if everything else ids:
            self._changed(request_id)

    def _changed(self, request_id: str) -> None:
        for watch in self._watchers.pop(request_id, ()):
            if not watch.done():
                watch.set_result(None)

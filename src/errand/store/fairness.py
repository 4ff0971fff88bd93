"""The fair claim, as a pure plan: whose turn it is, what caps allow. No I/O. The one home of the rules.

Each fairness key with unfinished work has a row in `fair_keys` holding its `next_turn`, a
virtual time. A claim serves the key with the smallest turn, takes the head of that key's queue
(smallest sort_key: priority with aging, then submit order) and advances the key's turn by
1/weight (its n-th claim in a plan is at next_turn + n/weight, ties by key); then the next
smallest, and so on (weighted round-robin, decided by the database's rows, not by any process).
A key whose head may not run now (its user, agent or the formation is at its cap) loses its
turn: it goes behind every key this claim looked at. A key with nothing claimable is dropped
when it has no unfinished rows left, else sent behind the same way.

Two executable forms: SQLite runs this module (`store/sqlite/scheduling.py`); PostgreSQL runs
the same plan inside the database as the function `errand_fair_claim` (migration
`postgres/0016_fair_claim_function.sql`), so a claim is one statement. The store contract suite
(`tests/store/contract_scheduling.py`, unchanged on both backends) is what proves they agree;
a change of rule is made here and in a new PostgreSQL migration together.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from errand.errors import QueueFull, SessionBusy
from errand.models import SUPERSEDED, ErrorInfo, Limits, NewRequest, Request, Status, sources_of
from errand.request_ids import public_id
from errand.store.rules import claimable, sql_in

ROUNDS = 4
"""Plans one claim may make: a plan that met empty or capped keys leaves room for another over
the keys behind them (each of those keys now sits behind the rest)."""

WAIT_USER, WAIT_AGENT, WAIT_FORMATION = "user_limit", "agent_limit", "formation_limit"
"""`waiting_on` values of a request held back by a cap."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A claimable row at the head of its key's queue."""

    id: str
    key: str
    owner: str
    user_id: str
    agent: str | None


@dataclass(slots=True)
class Running:
    """What runs now across every process: per user, per agent, in all."""

    users: Counter[tuple[str, str]] = field(default_factory=Counter)
    agents: Counter[str] = field(default_factory=Counter)
    total: int = 0

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, str | None]]) -> Running:
        """From (owner, user_id, agent) of every running row."""
        running = cls()
        for owner, user_id, agent in rows:
            running.add(owner, user_id, agent)
        return running

    def add(self, owner: str, user_id: str, agent: str | None) -> None:
        self.users[(owner, user_id)] += 1
        if agent is not None:
            self.agents[agent] += 1
        self.total += 1

    def blocked(self, owner: str, user_id: str, agent: str | None, limits: Limits) -> str | None:
        """The cap that keeps one more request of this user and agent from running now, if any."""
        if limits.max_running is not None and self.total >= limits.max_running:
            return WAIT_FORMATION
        if limits.max_running_per_user is not None and self.users[(owner, user_id)] >= (
            limits.max_running_per_user
        ):
            return WAIT_USER
        cap = limits.agent_caps.get(agent) if agent is not None else None
        if cap is not None and self.agents[agent or ""] >= cap:
            return WAIT_AGENT
        return None


def step(key: str, limits: Limits) -> float:
    """How far one claim advances a key's turn: 1 / its weight."""
    return 1.0 / max(limits.weights.get(key, 1.0), 1e-6)


def slot(turn: float, n: int, key: str, limits: Limits) -> float:
    """The virtual time of a key's claim number n (from 0) in one plan: turn + n / weight
    (computed so, not summed step by step, so that SQL's float8 gives the very same value)."""
    return turn + n * step(key, limits)


def quotas(keys: Sequence[tuple[str, float]], limit: int, limits: Limits) -> dict[str, int]:
    """How many heads to read per key, were every key's queue long enough for `limit` claims."""
    heap = [(turn, key, 0, turn) for key, turn in keys]
    heapq.heapify(heap)
    counts: Counter[str] = Counter()
    for _ in range(limit if heap else 0):
        _, key, n, base = heapq.heappop(heap)
        counts[key] += 1
        heapq.heappush(heap, (slot(base, n + 1, key, limits), key, n + 1, base))
    return dict(counts)


@dataclass(slots=True)
class Plan:
    """A claim's outcome: the rows to take in order, the turns to store, the keys found empty."""

    chosen: list[Candidate] = field(default_factory=list)
    turns: dict[str, float] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    """Keys with nothing claimable now: dropped if they have no unfinished rows, else given
    `turns[key]` (behind the others)."""
    held: list[str] = field(default_factory=list)
    """Keys whose head a cap held back (sent behind the others)."""

    @property
    def another(self) -> bool:
        """Whether another plan in the same claim may find more: this one passed over keys."""
        return bool(self.empty or self.held)


def plan(
    keys: Sequence[tuple[str, float]],
    heads: dict[str, list[Candidate]],
    running: Running,
    limits: Limits,
    limit: int,
) -> Plan:
    """Serve keys in turn order, one head per turn, within the caps, up to `limit` rows."""
    out = Plan()
    heap = [(turn, key, 0, turn) for key, turn in keys]
    heapq.heapify(heap)
    queues = {key: list(reversed(heads.get(key, []))) for key, _ in keys}
    held = out.held
    while heap and len(out.chosen) < limit:
        _, key, n, base = heapq.heappop(heap)
        queue = queues[key]
        if not queue:
            if key not in out.turns:
                out.empty.append(key)
            continue
        head = queue[-1]
        if running.blocked(head.owner, head.user_id, head.agent, limits) is not None:
            held.append(key)
            continue
        queue.pop()
        out.chosen.append(head)
        running.add(head.owner, head.user_id, head.agent)
        out.turns[key] = slot(base, n + 1, key, limits)
        heapq.heappush(heap, (out.turns[key], key, n + 1, base))
    back = max([turn for _, turn in keys] + list(out.turns.values()), default=0.0) + 1.0
    for key in held + out.empty:
        out.turns[key] = back
    return out


# -- the rules of fair claims and session turns both backends share --------------------------------
UNFINISHED = f"status IN {sql_in(sources_of(Status.PROCESSING))}"
"""The predicate of the `requests_fair` index (pending or processing): a key's unfinished rows."""
SESSION_UNFINISHED = f"status IN {sql_in((*sources_of(Status.PROCESSING), Status.INPUT_REQUIRED))}"
"""A session's unfinished requests: a request waiting for input still holds its session's turn
(busy for `on_busy`: enqueue waits, reject refuses, interrupt cancels it)."""


def fair_head(key: str, now: str) -> str:
    """The claimable rows of one fairness key (`key`, `now`: placeholders), for the head of its
    queue by `requests_fair` (fairness_key, sort_key)."""
    return f"fairness_key = {key} AND {UNFINISHED} AND {claimable(now)}"


WAIT_SESSION = "session"
"""`waiting_on` of a request held until the running request of its session ends."""
WAIT_RETRY = "retry"
"""`waiting_on` of a request between attempts, due later."""


def sort_key(priority: int, aging_seconds: float, now: float) -> float:
    """Position within a fairness key: submit time pushed back (priority - 1) aging periods, so
    one level of priority is worth `aging_seconds` of waiting and nothing waits forever."""
    return now + (priority - 1) * aging_seconds


def session_busy(request_id: str) -> SessionBusy:
    """A submit with on_busy=reject while its session has an unfinished request."""
    shown = public_id(request_id)
    return SessionBusy(f"the session is busy with request {shown!r}", details={"active_request_id": shown})


def queue_full(cap: int) -> QueueFull:
    """A submit past limits.max_queued_per_user (the API adds the Retry-After of its config)."""
    message = f"too many queued requests (limit {cap}); retry later"
    return QueueFull(message, details={"max_queued_per_user": cap})


def over_queue_cap(new: NewRequest, queued: int) -> None:
    """QueueFull when the user's pending requests (`queued`, counted up to the cap in the
    submit's transaction) leave no room for `new`."""
    if new.max_queued is not None and queued >= new.max_queued:
        raise queue_full(new.max_queued)


POSITION_CAP = 10_000
"""Earlier requests of the same key counted for `queue_position` (the count stops there)."""


def waiting_on(req: Request, running: Running, limits: Limits, now: float) -> str:
    """Why a pending request is not running yet: its session, a cap, or its turn (`worker`)."""
    if req.waiting_on is not None:
        return req.waiting_on
    if req.run_at > now:
        return WAIT_RETRY
    return running.blocked(req.owner, req.user_id, req.agent, limits) or "worker"


def queue_position(ahead: int, keys: int, before: int) -> int:
    """About how many claims come before this request: every earlier request of its key costs
    one round over the `keys` with work, and `before` keys take their turn ahead of it in this
    round. Weights and caps are not counted (approximate by design)."""
    return 1 + ahead * max(keys, 1) + before


SUPERSEDED_ERROR = ErrorInfo(SUPERSEDED, "superseded by a newer request of its session")
"""What a request interrupted by a newer one of its session records (its cancel reason)."""

"""Fair claiming, session turns and queue positions on SQLite (the plan is `store.fairness`).

Run on the one writer connection, so a claim, the turns it stores and the caps it checks are one
transaction no other claimer can interleave with. Every query is driven by an index:
`fair_keys_turn` for whose turn it is, `requests_fair` for the head of a key's queue,
`requests_by_lease_owner` for what runs now, `requests_session_*` for sessions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from errand.models import Limits, NewRequest, QueueInfo, Request, Status
from errand.store import fairness, rules
from errand.store.fairness import Candidate, Running
from errand.store.sqlite.rows import dumps, loads

BY_ID_CLAIMABLE = rules.claimable("?", status="+status")
"""The fair claim's check of the rows it chose by id: `+status` keeps SQLite on the primary key
(with `status IN` it walked every pending row of `requests_by_status`: 0.4 s a claim at 1,000,000)."""


def claim_chosen_sql(n: int) -> str:
    """The UPDATE that claims the `n` requests a fair plan chose, by id (checked again)."""
    return (
        "UPDATE requests SET status = 'processing', attempt = attempt + 1, lease_owner = ?, "
        "lease_expires_at = ?, started_at = COALESCE(started_at, ?), seq = seq + 1, updated_at = ? "
        f"WHERE id IN ({', '.join('?' * n)}) AND {BY_ID_CLAIMABLE} RETURNING {rules.REQUEST_COLUMNS}"
    )


_SESSION = "owner = ? AND user_id = ? AND session_id = ?"
_ACTIVE = f"{_SESSION} AND waiting_on IS NULL AND {fairness.SESSION_UNFINISHED}"
_RUNNING = "SELECT owner, user_id, agent FROM requests WHERE lease_owner IS NOT NULL"


def add_key(conn: sqlite3.Connection, key: str) -> None:
    """A key with new work joins the current round (the smallest turn) unless it is in one."""
    conn.execute(
        "INSERT INTO fair_keys (key, next_turn) "
        "VALUES (?, COALESCE((SELECT min(next_turn) FROM fair_keys), 0)) ON CONFLICT (key) DO NOTHING",
        (key,),
    )


def claim(
    conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Request]:
    """Up to `limit` runnable rows leased to worker_id, each with its `started` event: in fair
    order within the caps (`fairness`), or with limits.fair off oldest run_at first."""
    claimed = (_fair if limits.fair else _fifo)(conn, worker_id, limit, lease_seconds, now, limits)
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, 'started', ?, ?)",
        [(r.id, r.seq, dumps({"status": r.status.value, "attempt": r.attempt}), now) for r in claimed],
    )
    return claimed


def _fifo(
    conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float, now: float, _: Limits
) -> list[Request]:
    """Oldest run_at first (insertion order breaks ties), as before fair claiming; no caps."""
    found = conn.execute(
        f"UPDATE requests SET status = 'processing', attempt = attempt + 1, lease_owner = ?, "
        f"lease_expires_at = ?, started_at = COALESCE(started_at, ?), seq = seq + 1, updated_at = ? "
        f"WHERE id IN (SELECT id FROM requests WHERE {rules.claimable('?')} "
        f"ORDER BY run_at, rowid LIMIT ?) RETURNING rowid, {rules.REQUEST_COLUMNS}",
        (worker_id, now + lease_seconds, now, now, now, limit),
    ).fetchall()
    found.sort(key=lambda row: (row[22], row[0]))  # run_at, rowid
    return [rules.to_request(row[1:], loads) for row in found]


def _fair(
    conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Request]:
    claimed: list[Request] = []
    for _ in range(fairness.ROUNDS):
        more, another = _fair_round(conn, worker_id, limit - len(claimed), lease_seconds, now, limits)
        claimed += more
        if len(claimed) >= limit or not another:
            break
    return claimed


def _fair_round(
    conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> tuple[list[Request], bool]:
    keys = [(k, t) for k, t in conn.execute(_KEYS, (limit,))]
    quota = fairness.quotas(keys, limit, limits)
    if not quota:
        return [], False
    heads = {
        key: [Candidate(r[0], key, r[1], r[2], r[3]) for r in conn.execute(_HEADS, (key, now, count))]
        for key, count in quota.items()
    }
    running = Running.of(conn.execute(_RUNNING)) if limits.capped else Running()
    plan = fairness.plan([kt for kt in keys if kt[0] in quota], heads, running, limits, limit)
    for key in plan.empty:
        if conn.execute(_HAS_UNFINISHED, (key,)).fetchone() is None:
            conn.execute("DELETE FROM fair_keys WHERE key = ?", (key,))
            del plan.turns[key]
    conn.executemany(
        "UPDATE fair_keys SET next_turn = ? WHERE key = ?", [(t, k) for k, t in plan.turns.items()]
    )
    order = {c.id: n for n, c in enumerate(plan.chosen)}
    if not order:
        return [], plan.another
    found = conn.execute(
        claim_chosen_sql(len(order)), (worker_id, now + lease_seconds, now, now, *order, now)
    ).fetchall()
    return sorted((rules.to_request(row, loads) for row in found), key=lambda r: order[r.id]), plan.another


_KEYS = "SELECT key, next_turn FROM fair_keys ORDER BY next_turn, key LIMIT ?"
_HEADS = (
    f"SELECT id, owner, user_id, agent FROM requests WHERE {fairness.fair_head('?', '?')} "
    "ORDER BY sort_key, rowid LIMIT ?"
)
_HAS_UNFINISHED = f"SELECT 1 FROM requests WHERE fairness_key = ? AND {fairness.UNFINISHED} LIMIT 1"


# -- sessions ----------------------------------------------------------------------------------
def take_turn(conn: sqlite3.Connection, new: NewRequest, cancel: Callable[[str], object]) -> str | None:
    """The `waiting_on` of a new request of a session, after its on_busy policy: none when the
    session is idle; `session` (enqueue); SessionBusy (reject); or, for interrupt, every
    unfinished request of the session is cancelled (`cancel`, reason superseded) first."""
    if new.session_id is None:
        return None
    active = session_active(conn, new)
    if active is None:
        return None
    if new.on_busy == "reject":
        raise fairness.session_busy(active)
    if new.on_busy == "interrupt":
        for request_id in session_unfinished(conn, new):
            cancel(request_id)
        return None
    return fairness.WAIT_SESSION


def session_active(conn: sqlite3.Connection, new: NewRequest) -> str | None:
    """The id of the session's request that holds its turn (unfinished, not held), if any."""
    row = conn.execute(
        f"SELECT id FROM requests WHERE {_ACTIVE}", (new.owner, new.user_id, new.session_id)
    ).fetchone()
    return None if row is None else str(row[0])


def session_unfinished(conn: sqlite3.Connection, new: NewRequest) -> list[str]:
    """Every unfinished request of the session: the held ones first, the active one last."""
    rows = conn.execute(
        f"SELECT id FROM requests WHERE {_SESSION} AND {fairness.SESSION_UNFINISHED} "
        "ORDER BY waiting_on IS NULL, created_at, rowid",
        (new.owner, new.user_id, new.session_id),
    ).fetchall()
    return [str(r[0]) for r in rows]


def release_session(conn: sqlite3.Connection, ended: Request, now: float) -> None:
    """The request that held its session's turn ended: the next held one (submit order) may run."""
    if ended.session_id is None or ended.waiting_on is not None:
        return
    conn.execute(
        "UPDATE requests SET waiting_on = NULL, updated_at = ? WHERE id = (SELECT id FROM requests "
        f"WHERE {_SESSION} AND waiting_on IS NOT NULL AND {fairness.UNFINISHED} "
        "ORDER BY created_at, rowid LIMIT 1)",
        (now, ended.owner, ended.user_id, ended.session_id),
    )


# -- what the status document shows --------------------------------------------------------------
def queued_count(conn: sqlite3.Connection, owner: str, user_id: str, cap: int) -> int:
    """The user's queued (pending) requests, counted up to `cap` (index `requests_queued`)."""
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM requests WHERE owner = ? AND user_id = ? "
        "AND status = 'pending' LIMIT ?)",
        (owner, user_id, cap),
    ).fetchone()
    return int(row[0])


def queue_info(conn: sqlite3.Connection, req: Request, now: float, limits: Limits) -> QueueInfo:
    """Why a pending request waits, and about how many claims come before it (see
    `fairness.queue_position`)."""
    if req.status is not Status.PENDING:
        return QueueInfo(None, None)
    running = Running.of(conn.execute(_RUNNING)) if limits.capped else Running()
    ahead = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM requests WHERE fairness_key = ? AND "
        f"{fairness.UNFINISHED} AND lease_owner IS NULL AND sort_key < "
        "(SELECT sort_key FROM requests WHERE id = ?) LIMIT ?)",
        (req.fairness_key, req.id, fairness.POSITION_CAP),
    ).fetchone()[0]
    keys = conn.execute("SELECT count(*) FROM fair_keys").fetchone()[0]
    turn = conn.execute(
        "SELECT count(*) FROM fair_keys WHERE next_turn < (SELECT next_turn FROM fair_keys WHERE key = ?)",
        (req.fairness_key,),
    ).fetchone()[0]
    return QueueInfo(
        fairness.waiting_on(req, running, limits, now), fairness.queue_position(ahead, keys, turn)
    )

"""The two executable forms of the fair plan agree: the same random history of submits, claims
(under random caps and weights), finishes, retries and cancels, played on SQLite (the Python
plan of store/fairness.py) and on PostgreSQL (errand_fair_claim, migration 0016), claims the
same requests in the same order at every step, and leaves the same turns in fair_keys.

The contract suite pins each rule by example; this test pins that nothing in between differs
(tie-breaks, turns after held or empty keys, several plans in one claim, tenant keys spanning
users, sessions, retries not yet due).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from errand.clock import ManualClock
from errand.models import ErrorInfo, Limits, NewRequest, Result, Status
from errand.store.base import Store
from errand.store.sqlite import SqliteStore
from tests.support.pg_fixtures import StoreFactory

pytestmark = pytest.mark.postgres

LIMITS = [
    Limits(),
    Limits(max_running_per_user=2),
    Limits(max_running=7),
    Limits(agent_caps={"a": 2, "b": 3}),
    Limits(weights={"owner-a/u0": 3.0, "tenant": 0.5}),
    Limits(max_running_per_user=1, agent_caps={"a": 1}, weights={"owner-a/u1": 2.0}),
]
USERS = ["u0", "u1", "u2", "u3"]


def new_request(rng: random.Random, n: int) -> NewRequest:
    user = rng.choice(USERS)
    return NewRequest(
        id=f"r{n}",
        owner="owner-a",
        user_id=user,
        message="hi",
        agent=rng.choice([None, "a", "b"]),
        priority=rng.randint(1, 5),
        aging_seconds=5.0,
        fairness_key="tenant" if rng.random() < 0.25 else None,
        session_id=f"{user}-chat" if rng.random() < 0.15 else None,
    )


async def step(
    rng: random.Random, stores: list[Store], clock: ManualClock, made: list[int], running: set[str]
) -> list[list[str]]:
    """One random action on every store alike; what each one claimed, if it was a claim."""
    action = rng.choices(["submit", "claim", "finish", "retry", "cancel"], [4, 4, 3, 1, 1])[0]
    if action == "submit":
        for _ in range(rng.randint(1, 8)):
            new = new_request(rng, made[0])
            made[0] += 1
            for store in stores:
                await store.submit(new)
            clock.advance(rng.choice([0.001, 0.5, 3.0]))
        return []
    if action == "claim":
        limits, n = rng.choice(LIMITS), rng.randint(1, 12)
        got = [[c.request.id for c in await s.claim("w", n, 30.0, limits)] for s in stores]
        running.update(got[0])
        return got
    chosen = rng.sample(sorted(running), k=min(len(running), rng.randint(1, 4)))
    for store in stores:
        for rid in chosen:
            req = await store.get(rid)
            if action == "finish":
                await store.finish(rid, req.attempt, Status.COMPLETED, result=Result("ok"))
            elif action == "retry":
                await store.retry_later(rid, req.attempt, clock.now() + 2.0, ErrorInfo("x", "later"))
            else:
                await store.request_cancel(rid)
    running.difference_update(chosen)
    return []


def turns_sqlite(path: Path) -> list[tuple[str, float]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT key, next_turn FROM fair_keys ORDER BY key").fetchall()
    return [(str(k), float(t)) for k, t in rows]


async def turns_pg(url: str) -> list[tuple[str, float]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT key, next_turn FROM fair_keys ORDER BY key")
    finally:
        await conn.close()
    return [(r["key"], r["next_turn"]) for r in rows]


@pytest.mark.parametrize("seed", range(8))
async def test_sqlite_and_postgres_claim_alike(
    seed: int, tmp_path: Path, clock: ManualClock, pg_stores: StoreFactory, pg_url: str
) -> None:
    path = tmp_path / "parity.db"
    lite = await SqliteStore.open(f"sqlite:///{path}", clock=clock)
    try:
        stores: list[Store] = [lite, await pg_stores()]
        rng, made, running, claimed = random.Random(seed), [0], set[str](), 0
        for n in range(60):
            got = await step(rng, stores, clock, made, running)
            if got:
                claimed += len(got[0])
                assert got[0] == got[1], f"seed {seed}, step {n}"
                assert turns_sqlite(path) == await turns_pg(pg_url), f"seed {seed}, step {n}"
        assert claimed >= 20
    finally:
        await lite.close()

"""The pure fair plan (store/fairness.py): slots, quotas, held and empty keys, the queue cap;
and that PostgreSQL's executable form of it (migration 0016) takes the documented claim lock."""

from __future__ import annotations

import importlib.resources

import pytest

from errand.errors import QueueFull
from errand.models import Limits, NewRequest
from errand.store import fairness
from errand.store.fairness import Candidate, Running
from errand.store.postgres import fair_sql


def heads(key: str, n: int, user: str = "u", agent: str | None = None) -> list[Candidate]:
    return [Candidate(f"{key}{i}", key, "o", user, agent) for i in range(n)]


def test_slots_are_turn_plus_n_over_weight() -> None:
    limits = Limits(weights={"k": 3.0})
    assert fairness.slot(1.5, 0, "k", limits) == 1.5
    assert fairness.slot(1.5, 3, "k", limits) == 1.5 + 3 * (1.0 / 3.0)  # not 1/3 summed thrice
    assert fairness.slot(0.0, 2, "other", limits) == 2.0


def test_quotas_follow_weights_and_ties_go_by_key() -> None:
    limits = Limits(weights={"a": 3.0})
    assert fairness.quotas([("a", 0.0), ("b", 0.0)], 8, limits) == {"a": 6, "b": 2}
    assert fairness.quotas([("b", 0.0), ("a", 0.0)], 1, Limits()) == {"a": 1}
    assert fairness.quotas([], 5, Limits()) == {}


def test_plan_round_robins_and_advances_turns() -> None:
    keys = [("a", 0.0), ("b", 0.0)]
    out = fairness.plan(keys, {"a": heads("a", 3), "b": heads("b", 3)}, Running(), Limits(), 4)
    assert [c.id for c in out.chosen] == ["a0", "b0", "a1", "b1"]
    assert out.turns == {"a": 2.0, "b": 2.0}
    assert not out.another


def test_a_held_key_stops_and_goes_behind_the_plan() -> None:
    keys = [("a", 0.0), ("b", 0.0), ("c", 5.0)]
    running = Running.of([("o", "busy", None)] * 2)
    found = {"a": heads("a", 2, user="busy"), "b": heads("b", 2), "c": []}
    out = fairness.plan(keys, found, running, Limits(max_running_per_user=2), 10)
    assert [c.id for c in out.chosen] == ["b0", "b1"]
    assert (out.held, out.empty) == (["a"], ["c"])
    assert out.turns["a"] == out.turns["c"] == 6.0  # behind every key looked at: max turn + 1
    assert out.another


def test_a_formation_cap_holds_every_key() -> None:
    keys = [("a", 0.0), ("b", 0.0)]
    out = fairness.plan(keys, {"a": heads("a", 2), "b": heads("b", 2)}, Running(), Limits(max_running=3), 10)
    assert [c.id for c in out.chosen] == ["a0", "b0", "a1"]
    assert out.held == ["b"]


def test_the_queue_cap_refuses_at_the_cap() -> None:
    new = NewRequest(id="r", owner="o", user_id="u", message="m", max_queued=2)
    fairness.over_queue_cap(new, 1)
    with pytest.raises(QueueFull) as caught:
        fairness.over_queue_cap(new, 2)
    assert caught.value.details == {"max_queued_per_user": 2}
    fairness.over_queue_cap(NewRequest(id="r", owner="o", user_id="u", message="m"), 10**6)


def test_the_postgres_function_takes_the_claim_lock() -> None:
    folder = importlib.resources.files("errand.store").joinpath("migrations", "postgres")
    script = folder.joinpath("0016_fair_claim_function.sql").read_text(encoding="utf-8")
    assert f"pg_advisory_xact_lock({fair_sql.CLAIM_LOCK})" in script
    assert "errand_fair_claim(" in fair_sql.CLAIM

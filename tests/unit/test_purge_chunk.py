"""The size of SQLite purge chunks follows how long the last one held the writer
(purge_rules.next_purge_chunk)."""

from __future__ import annotations

from errand.store import purge_rules

LOW, HIGH = purge_rules.PURGE_CHUNK_SECONDS


def test_a_fast_chunk_doubles_the_next_one() -> None:
    assert purge_rules.next_purge_chunk(200, LOW / 2) == 400


def test_a_slow_chunk_halves_the_next_one() -> None:
    assert purge_rules.next_purge_chunk(200, HIGH * 3) == 100


def test_a_chunk_within_the_target_keeps_its_size() -> None:
    for seconds in (LOW, (LOW + HIGH) / 2, HIGH):
        assert purge_rules.next_purge_chunk(200, seconds) == 200


def test_the_size_stays_within_its_bounds() -> None:
    assert purge_rules.next_purge_chunk(purge_rules.PURGE_CHUNK_MAX, 0.0) == purge_rules.PURGE_CHUNK_MAX
    assert purge_rules.next_purge_chunk(purge_rules.PURGE_CHUNK_MAX - 1, 0.0) == purge_rules.PURGE_CHUNK_MAX
    assert purge_rules.next_purge_chunk(purge_rules.PURGE_CHUNK_MIN, 10.0) == purge_rules.PURGE_CHUNK_MIN
    assert purge_rules.next_purge_chunk(purge_rules.PURGE_CHUNK_MIN + 1, 10.0) == purge_rules.PURGE_CHUNK_MIN


def test_a_steady_cost_per_row_settles_within_the_target() -> None:
    """At 0.1 ms a row (a big table) the size settles where a chunk takes 5-10 ms."""
    chunk = purge_rules.PURGE_CHUNK
    for _ in range(20):
        chunk = purge_rules.next_purge_chunk(chunk, chunk * 0.0001)
    assert LOW <= chunk * 0.0001 <= HIGH


def test_the_purge_ends_on_a_chunk_short_of_its_own_size() -> None:
    assert not purge_rules.purge_finished(800, 0, 0, chunk=800)
    assert purge_rules.purge_finished(799, 799, 10, chunk=800)
    assert not purge_rules.purge_finished(0, 0, purge_rules.PURGE_CHUNK)  # PostgreSQL's fixed size

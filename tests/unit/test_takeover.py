"""errand.engine.takeover: the summary line names at most SHOWN_IDS ids, and how many more."""

from __future__ import annotations

from errand.engine.takeover import SHOWN_IDS, shown_ids


def test_a_few_ids_are_all_named() -> None:
    assert shown_ids(["req_a"]) == "req_a"
    assert shown_ids(["req_a", "req_b"]) == "req_a, req_b"


def test_many_ids_are_cut_to_the_first_ones_and_a_count() -> None:
    ids = [f"req_{i}" for i in range(SHOWN_IDS + 5)]
    text = shown_ids(ids)
    assert text == ", ".join(ids[:SHOWN_IDS]) + " and 5 more"
    assert f"req_{SHOWN_IDS}," not in text and f"req_{SHOWN_IDS} " not in text
    assert shown_ids(ids[:SHOWN_IDS]) == ", ".join(ids[:SHOWN_IDS])  # exactly SHOWN_IDS: no count

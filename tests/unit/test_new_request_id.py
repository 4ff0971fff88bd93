"""Generated request ids: the documented form, unguessable, and sorted by creation time (so new
rows land together at the end of every index keyed by request id, whatever the backlog)."""

from __future__ import annotations

import re

from errand.clock import new_request_id

FORM = re.compile(r"req_[A-Za-z0-9_-]{22}")


def test_the_form_is_req_and_22_url_safe_characters() -> None:
    for at in (None, 0.0, 1_800_000_000.0, 63**8 / 1000 - 0.001):
        assert FORM.fullmatch(new_request_id(at)), at


def test_ids_sort_as_their_creation_times_to_the_millisecond() -> None:
    times = [0.0, 0.001, 1.0, 1_700_000_000.0, 1_700_000_000.001, 1_800_000_000.5, 4_000_000_000.0]
    ids = [new_request_id(t) for t in times]
    assert ids == sorted(ids)
    assert new_request_id(1_800_000_000.0)[:12] == new_request_id(1_800_000_000.0)[:12]


def test_ids_of_one_millisecond_differ_in_84_random_bits() -> None:
    ids = {new_request_id(1_800_000_000.0) for _ in range(2000)}
    assert len(ids) == 2000
    tails = [i[12:] for i in ids]
    assert all(len(t) == 14 for t in tails)
    assert len({t[0] for t in tails}) > 40  # the random part is spread over the alphabet

"""api.request_filters: the list's filters from a query string or a JSON filter, 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from errand.api.request_filters import confirm, parse_filters
from errand.console_models import Match
from errand.errors import Conflict, InvalidRequest
from errand.models import Status


def test_every_filter_parsed_and_blank_means_unset() -> None:
    got = parse_filters(
        {"status": "failed", "agent": "echo", "kind": "trigger", "user_id": "u1", "since": "10", "until": 20}
    )
    assert got.status is Status.FAILED and got.user_id == "u1"
    assert got.match == Match(agent="echo", kind="trigger", since=10.0, until=20.0)
    assert parse_filters({"status": "", "agent": None}).match == Match()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"status": "done"}, "status"),
        ({"kind": "email"}, "kind"),
        ({"agent": "x" * 201}, "agent"),
        ({"agent": 5}, "agent"),
        ({"user_id": "a b"}, "user_id"),
        ({"since": "nan"}, "since"),
        ({"since": True}, "since"),
        ({"until": "-3"}, "until"),
        ({"until": "1e300"}, "until"),
        ({"since": 10, "until": 5}, "until"),
    ],
)
def test_bad_values_name_their_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_filters(values)
    assert caught.value.details == {"field": field}


def test_a_bulk_run_needs_the_count_the_operator_saw() -> None:
    confirm(3, 3)
    with pytest.raises(InvalidRequest):
        confirm(None, 3)
    with pytest.raises(Conflict) as caught:
        confirm(2, 3)
    assert caught.value.details == {"matched": 3, "expect": 2}

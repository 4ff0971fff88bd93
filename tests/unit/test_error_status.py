"""errand.error_status: the one table of error classes and HTTP statuses, read both ways.

The server's answers by it: tests/unit/test_api_errors.py; the SDK's reading of an answer by it:
tests/unit/test_client.py (TestErrorMapping).
"""

from __future__ import annotations

import pytest

from errand import errors
from errand.error_status import BY_STATUS, STATUS, status_of_class


def test_each_class_in_the_table_has_one_status_and_no_status_two_classes() -> None:
    assert len(set(STATUS.values())) == len(STATUS)
    assert all(status_of_class(cls) == status for cls, status in STATUS.items())


def test_a_class_outside_the_table_takes_its_nearest_listed_parents_status() -> None:
    assert status_of_class(errors.ResourceNotFound) == 404
    assert status_of_class(errors.QueueFull) == 429
    assert status_of_class(errors.LeaseLost) == 500


def test_a_bare_status_reads_back_as_the_class_the_server_answers_it_with() -> None:
    # every status the table sends (but the generic 500) names a class that the server answers with it
    for status, cls in BY_STATUS.items():
        if status not in (502, 504):  # a gateway's: the server itself answers 503
            assert status_of_class(cls) == status or (status, cls) == (400, errors.InvalidRequest)
    assert set(STATUS.values()) - {500} <= set(BY_STATUS)
    assert 500 not in BY_STATUS  # unknown trouble stays the caller's to name


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.InvalidRequest),  # not MalformedBody: a bare 400 says only "invalid"
        (404, errors.ResourceNotFound),  # an unknown route, never a request's id
        (405, errors.MethodNotAllowed),
        (422, errors.InvalidRequest),
        (502, errors.ServiceUnavailable),
        (503, errors.ServiceUnavailable),
        (504, errors.ServiceUnavailable),
    ],
)
def test_the_classes_of_bare_statuses(status: int, cls: type[errors.ErrandError]) -> None:
    assert BY_STATUS[status] is cls

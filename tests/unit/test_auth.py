"""errand.api.auth: which headers carry which key, the user id rule, and who may see a request.

Called directly (no HTTP): tests/integration/test_api_http.py checks the same rules over the wire.
"""

from __future__ import annotations

from typing import cast

import pytest
from starlette.datastructures import Headers

from errand.api.auth import (
    DEFAULT_USER,
    Authenticator,
    Owner,
    get_owned,
    key_id,
    list_filter,
    require_admin,
    with_body_user,
)
from errand.errors import InvalidRequest, NotFound, RequestExpired, Unauthorized
from errand.models import Request
from errand.store.base import Store
from tests.support.models import stored_request

CLIENT = "client-key-aaaaaaaa"
OTHER = "client-key-bbbbbbbb"
ADMIN = "admin-key-cccccccc"
AUTH = Authenticator([CLIENT, OTHER], [ADMIN])


def authenticate(**headers: str) -> Owner:
    return AUTH.authenticate(Headers(headers))


def _request(owner: str, user_id: str) -> Request:
    return stored_request(owner=owner, user_id=user_id)


# -- keys ---------------------------------------------------------------------------------------


def test_key_id_is_a_short_stable_fingerprint_not_the_key() -> None:
    fingerprint = key_id(CLIENT)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert fingerprint == key_id(CLIENT) != key_id(OTHER)
    assert CLIENT not in fingerprint


def test_a_client_key_in_the_client_header_is_the_default_user_of_that_key() -> None:
    owner = authenticate(**{"X-Muxi-Client-Key": CLIENT})
    assert owner == Owner(key_id(CLIENT), DEFAULT_USER, is_admin=False, user_given=False)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {CLIENT}"},
        {"authorization": f"bearer {CLIENT}"},  # header names and the scheme are case-insensitive
        {"Authorization": f"Bearer   {CLIENT}  "},
    ],
)
def test_a_bearer_token_is_accepted_like_the_client_header(headers: dict[str, str]) -> None:
    assert authenticate(**headers).key_id == key_id(CLIENT)


def test_the_client_header_wins_over_a_bearer_token() -> None:
    owner = authenticate(**{"X-Muxi-Client-Key": CLIENT, "Authorization": f"Bearer {OTHER}"})
    assert owner.key_id == key_id(CLIENT)


def test_an_admin_key_is_admin_in_any_header() -> None:
    for headers in (
        {"X-Muxi-Admin-Key": ADMIN},
        {"X-Muxi-Client-Key": ADMIN},
        {"Authorization": f"Bearer {ADMIN}"},
    ):
        owner = authenticate(**headers)
        assert owner.is_admin and owner.key_id == key_id(ADMIN)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "A valid API key is required"),
        ({"Authorization": f"Basic {CLIENT}"}, "A valid API key is required"),  # not a bearer token
        ({"Authorization": "Bearer   "}, "A valid API key is required"),
        ({"X-Muxi-Client-Key": ""}, "A valid API key is required"),
        ({"X-Muxi-Client-Key": "client-key-zzzzzzzz"}, "Invalid API key"),
        ({"X-Muxi-Admin-Key": CLIENT}, "Invalid admin API key"),  # a client key is no admin key
        ({"X-Muxi-Admin-Key": "nope", "X-Muxi-Client-Key": CLIENT}, "Invalid admin API key"),  # no downgrade
    ],
)
def test_missing_or_wrong_keys_are_unauthorized(headers: dict[str, str], message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        authenticate(**headers)


def test_the_missing_key_message_says_how_to_send_one() -> None:
    with pytest.raises(Unauthorized) as info:
        authenticate()
    assert "X-Muxi-Client-Key" in info.value.message and "Authorization: Bearer" in info.value.message


def test_a_key_that_is_not_valid_utf8_is_just_wrong() -> None:
    with pytest.raises(Unauthorized, match="Invalid API key"):
        AUTH.authenticate({"x-muxi-client-key": "key-\udcff-surrogate"})


def test_a_prefix_or_extension_of_a_key_is_not_the_key() -> None:
    for near in (CLIENT[:-1], CLIENT + "x", CLIENT.upper()):
        with pytest.raises(Unauthorized, match="Invalid API key"):
            authenticate(**{"X-Muxi-Client-Key": near})


# -- the user id --------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["0", "alice", "a.b@example.com", "team:42+x=y", "u_" + "x" * 126])
def test_a_valid_user_header_names_the_user(user: str) -> None:
    owner = authenticate(**{"X-Muxi-Client-Key": CLIENT, "X-Muxi-User-Id": user})
    assert (owner.user_id, owner.user_given) == (user, True)


@pytest.mark.parametrize("user", ["", "with space", "a/b", "x" * 129, "tab\there", "é"])
def test_a_malformed_user_header_is_invalid_and_names_the_header(user: str) -> None:
    with pytest.raises(InvalidRequest, match="X-Muxi-User-Id must be 1-128 characters") as info:
        AUTH.authenticate({"x-muxi-client-key": CLIENT, "x-muxi-user-id": user})
    assert info.value.details == {"field": "X-Muxi-User-Id"}


def test_the_body_user_id_applies_only_without_a_user_header() -> None:
    anonymous = authenticate(**{"X-Muxi-Client-Key": CLIENT})
    assert with_body_user(anonymous, None) is anonymous
    assert with_body_user(anonymous, "bob") == Owner(key_id(CLIENT), "bob", is_admin=False, user_given=True)
    named = authenticate(**{"X-Muxi-Client-Key": CLIENT, "X-Muxi-User-Id": "alice"})
    assert with_body_user(named, "bob") is named  # the header wins
    with pytest.raises(InvalidRequest, match="user_id must be") as info:
        with_body_user(anonymous, "not ok")
    assert info.value.details == {"field": "user_id"}


# -- ownership ----------------------------------------------------------------------------------

ALICE = Owner(key_id(CLIENT), "alice", is_admin=False)
ADMIN_OWNER = Owner(key_id(ADMIN), DEFAULT_USER, is_admin=True, user_given=False)


class OneRequestStore:
    """Just `get`: the one Store method get_owned calls."""

    def __init__(self, answer: Request | RequestExpired) -> None:
        self.answer = answer

    async def get(self, request_id: str) -> Request:
        if isinstance(self.answer, RequestExpired):
            raise self.answer
        return self.answer


def answering(answer: Request | RequestExpired) -> Store:
    return cast(Store, OneRequestStore(answer))


async def test_a_client_gets_only_requests_of_its_key_and_user() -> None:
    mine = _request(key_id(CLIENT), "alice")
    assert await get_owned(answering(mine), ALICE, "req_1") is mine
    for other in (_request(key_id(CLIENT), "bob"), _request(key_id(OTHER), "alice")):
        with pytest.raises(NotFound, match="Request req_1 not found"):  # 404 like an unknown id
            await get_owned(answering(other), ALICE, "req_1")


async def test_an_admin_gets_every_request() -> None:
    anothers = _request(key_id(OTHER), "bob")
    assert await get_owned(answering(anothers), ADMIN_OWNER, "req_1") is anothers


async def test_a_tombstone_is_410_for_its_owner_and_404_for_anyone_else() -> None:
    def expired(owner: str, user: str) -> Store:
        return answering(RequestExpired("purged", owner=owner, user_id=user))

    with pytest.raises(RequestExpired):
        await get_owned(expired(key_id(CLIENT), "alice"), ALICE, "req_1")
    with pytest.raises(RequestExpired):
        await get_owned(expired(key_id(OTHER), "bob"), ADMIN_OWNER, "req_1")
    for owner, user in ((key_id(OTHER), "alice"), (key_id(CLIENT), "bob")):
        with pytest.raises(NotFound, match="Request req_1 not found") as info:
            await get_owned(expired(owner, user), ALICE, "req_1")
        assert info.value.__cause__ is None  # nothing about the tombstone leaks
        assert info.value.__suppress_context__ or info.value.__context__ is None


def test_require_admin_refuses_other_keys_with_401_naming_the_header() -> None:
    require_admin(ADMIN_OWNER)
    with pytest.raises(Unauthorized, match="X-Muxi-Admin-Key"):
        require_admin(ALICE)


def test_list_filter_a_client_its_own_an_admin_everything_or_one_named_user() -> None:
    assert list_filter(ALICE) == (key_id(CLIENT), "alice")
    assert list_filter(ADMIN_OWNER) == (None, None)
    assert list_filter(Owner(key_id(ADMIN), "bob", is_admin=True, user_given=True)) == (None, "bob")

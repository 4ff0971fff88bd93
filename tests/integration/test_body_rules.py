"""Hostile JSON bodies over real HTTP, on both backends: deep nesting, NUL and lone surrogates
get a 422 naming the field (the same answer on SQLite and PostgreSQL), and one client's bad body
never fails another client's submit (issue 9, items 1 and 2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import CLIENT_KEY, OTHER_KEY, Server

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, make_server: Callable[..., Server], tmp_path: Path) -> Server:
    folder = tmp_path / "formation"
    (folder / "triggers").mkdir(parents=True)
    (folder / "triggers" / "issue.md").write_text("---\nagent: echo\n---\nIssue: ${{ data.title }}\n")
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return make_server(storage={"url": url}, base_dir=str(folder))
    return make_server(base_dir=str(folder))


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def raw_nested(depth: int) -> str:
    return '{"a":' * depth + '"leaf"' + "}" * depth


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "INVALID_REQUEST"
    if field is not None:
        assert error["details"]["field"] == field, error
        assert error["message"].startswith(field), error
    return error


@pytest.mark.parametrize("depth", [100, 255, 600, 1000])
def test_deep_metadata_is_a_422_naming_metadata(api: Server, depth: int) -> None:
    c = api.client()
    body = '{"message": "hi", "mode": "async", "metadata": ' + raw_nested(depth) + "}"
    error = assert_error(c.post("/v1/chat", content=body), 422, "metadata")
    assert str(api.config.server.max_json_depth) in error["message"]


def test_deep_body_with_idempotency_key_is_a_422(api: Server) -> None:
    c = api.client()
    body = '{"message": "hi", "mode": "async", "metadata": ' + raw_nested(300) + "}"
    assert_error(c.post("/v1/chat", content=body, headers={"Idempotency-Key": "k1"}), 422, "metadata")


def test_past_the_parser_limit_is_a_422_too(api: Server) -> None:
    c = api.client()
    error = assert_error(c.post("/v1/chat", content='{"metadata": ' + raw_nested(1100) + "}"), 422)
    assert "nested deeper" in error["message"]


def test_deep_trigger_data_is_a_422(api: Server) -> None:
    c = api.client()
    assert_error(c.post("/v1/triggers/issue", content='{"data": ' + raw_nested(990) + "}"), 422, "data")
    assert_error(c.post("/v1/triggers/issue", content='{"title": "\\u0000"}'), 422, "title")
    ok = c.post("/v1/triggers/issue", json={"data": {"title": "fine", "deep": nested(20)}})
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"message": "a\\u0000b"}', "message"),
        ('{"message": "hi", "metadata": {"k": ["x", "\\u0000"]}}', "metadata.k[1]"),
        ('{"message": "hi", "metadata": {"k\\u0000": 1}}', "metadata['k\\x00']"),
        ('{"message": "\\ud800"}', "message"),
        ('{"message": "hi", "metadata": {"k": "\\udfff tail"}}', "metadata.k"),
        ('{"message": "hi", "session_id": "s\\u0000"}', "session_id"),
    ],
)
def test_nul_and_lone_surrogates_are_a_422_naming_the_field(api: Server, body: str, field: str) -> None:
    c = api.client()
    assert_error(c.post("/v1/chat", content=body, headers={"Idempotency-Key": "k2"}), 422, field)


def test_raw_surrogate_bytes_are_refused_alike(api: Server) -> None:
    c = api.client()
    r = c.post("/v1/chat", content=b'{"message": "\xed\xa0\x80"}')
    assert_error(r, 422, "message")


def test_one_clients_deep_bodies_never_fail_anothers_submits(api: Server) -> None:
    """Item 1: metadata nested ~1000 levels, sent beside normal submits from another key."""
    bad_body = '{"message": "evil", "mode": "async", "metadata": ' + raw_nested(1000) + "}"

    async def run() -> tuple[list[int], list[int]]:
        def client(key: str) -> httpx.AsyncClient:
            limits = httpx.Limits(max_connections=40)
            return httpx.AsyncClient(base_url=api.base, headers={"X-Muxi-Client-Key": key}, limits=limits)

        async with client(OTHER_KEY) as evil, client(CLIENT_KEY) as good:

            async def bad() -> int:
                return (await evil.post("/v1/chat", content=bad_body, timeout=30)).status_code

            async def fine(n: int) -> int:
                r = await good.post("/v1/chat", json={"message": f"m{n}", "mode": "async"}, timeout=30)
                return r.status_code

            results = await asyncio.gather(*(bad() for _ in range(100)), *(fine(n) for n in range(200)))
        return list(results[:100]), list(results[100:])

    bad_statuses, good_statuses = asyncio.run(run())
    assert bad_statuses == [422] * 100
    assert good_statuses == [202] * 200

"""Hypothesis fuzzes every route of the app over real HTTP, on both backends: no answer is a
5xx, and every error is `{"error": {"code", "message", "details"}}` (on the OpenAI-compatible
/v1/responses routes, OpenAI's `{"error": {"message", "type", "param", "code"}}`).

The routes are read from the app itself (`create_app(...).routes`, mounts included), so a new
route is fuzzed without touching this file. Each example is one request: a route (or a path
beside one), a method, path parameters (real ids, other owners' ids, junk, NUL, long), a query
string, headers (no key, wrong key, admin, odd user ids, idempotency keys) and a body: JSON
built from the body models' own field names and unknown ones, values of every type, nesting up
to past the parser's limit, huge numbers, NUL and lone surrogates, or bytes that are not JSON.
Webhook URLs are drawn from a fixed list (loopback, malformed, refused), so nothing leaves the
host. Bounded: FUZZ_EXAMPLES requests per backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from errand.api.app import create_app
from errand.api.chat import ChatBody
from errand.api.responses_body import ResponsesBody
from errand.api.triggers import TriggerBody
from errand.schedules.spec import ScheduleSpec
from tests.support.fuzz_server import BACKENDS, fuzzed_server
from tests.support.server import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, Server

FUZZ_EXAMPLES = 2000
EXTRA_METHODS = ["PUT", "PATCH", "OPTIONS", "HEAD"]
FIELDS = sorted(
    {f.alias or n for n, f in ChatBody.model_fields.items()}
    | set(TriggerBody.model_fields)
    | set(ScheduleSpec.model_fields)
    | set(ResponsesBody.model_fields)
)
RESPONSE_BODY = b'{"model": "echo", "input": "hi", "background": true}'
OPENAI_ERROR = {"message", "type", "param", "code"}
WEBHOOK_URLS = [
    "http://127.0.0.1:9/hook",  # allow-listed loopback: nothing listens, deliveries fail
    "http://localhost:9/hook",  # refused: loopback by name (/etc/hosts, no DNS)
    "http://10.0.0.1/x",
    "http://[::1",
    "ftp://127.0.0.1/",
    "http://u:p@127.0.0.1/",
    "http://0x7f.1/",
    "javascript:alert(1)",
    "",
    "http://127.0.0.1:99999/",
]


@dataclass(frozen=True)
class Endpoint:
    path: str  # e.g. /v1/requests/{request_id}
    methods: tuple[str, ...]


def endpoints(server: Server) -> list[Endpoint]:
    """Every route of the app, mounts flattened."""
    app = create_app(server.config, with_workers=False)
    found: list[Endpoint] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route):
                found.append(Endpoint(prefix + route.path, tuple(sorted(route.methods or {"GET"}))))

    walk(list(app.routes), "")
    assert len(found) > 10
    return found


@pytest.fixture(params=BACKENDS)
def fuzzed(request: pytest.FixtureRequest, make_server: Callable[..., Server], tmp_path: Path) -> Server:
    return fuzzed_server(request, make_server, tmp_path, pg_fixture="pg_url")


# -- strategies ------------------------------------------------------------------------------------
ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
header_text = ascii_text.map(str.strip)  # h11 refuses surrounding whitespace in a header value
any_text = st.text(max_size=30)  # includes lone surrogates and NUL


def json_string(text: str) -> str:
    """A JSON string token; lone surrogates become \\uXXXX escapes (valid JSON, refused by us)."""
    return json.dumps(text, ensure_ascii=True)


numbers = st.one_of(
    st.integers().map(str),
    st.sampled_from(["1e999", "-1e400", "18446744073709551616", "1" * 400, "-0", "0.1e-999", "NaN"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, any_text.map(json_string))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.dictionaries(any_text.map(json_string), inner, max_size=4).map(
            lambda d: "{" + ",".join(f"{k}:{v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=12,
)


@st.composite
def deep(draw: st.DrawFn, objects: bool = False) -> str:
    depth = draw(st.sampled_from([255, 600, 990, 1100, 65, 64, 254, 200, 1023, 10]))
    pairs = [('{"a":', "}")] if objects else [('{"a":', "}"), ("[", "]")]
    opener, closer = draw(st.sampled_from(pairs))
    return opener * depth + draw(scalars) + closer * depth


JSON_FIELDS = {"metadata", "data"}


def field_value(name: str) -> st.SearchStrategy[str]:
    if name == "webhook_url":
        return st.sampled_from(WEBHOOK_URLS).map(json_string)
    if name == "message":
        return st.one_of(ascii_text.map(json_string), json_values)
    if name == "mode":
        return st.sampled_from(['"sync"', '"async"', '"auto"', '"x"', "1"])
    if name in JSON_FIELDS:  # objects that are stored: nesting is what hurts here
        return st.one_of(deep(objects=True), json_values, st.just('{"k": "a\\u0000"}'))
    return st.one_of(json_values, deep(), st.sampled_from(['"s-1"', "true", "null", "{}"]))


# The stored JSON fields first: hypothesis draws early choices more often.
CHAT_FIELDS = sorted({f.alias or n for n, f in ChatBody.model_fields.items()}, key=lambda n: n != "metadata")
TRIGGER_FIELDS = sorted(TriggerBody.model_fields, key=lambda n: n != "data")


@st.composite
def json_body(draw: st.DrawFn, path: str) -> bytes:
    """Mostly a valid body of the route with one or two fields fuzzed (that reaches past
    validation into storage); else any object, junk, a bare value, nothing."""
    kind = draw(st.sampled_from(["valid+"] * 6 + ["object", "object", "deep", "junk", "scalar", "empty"]))
    if kind == "valid+":
        trigger = "/triggers/" in path
        base = '"data": {"title": "t"}' if trigger else '"message": "hi", "mode": "async"'
        fields = TRIGGER_FIELDS if trigger else CHAT_FIELDS
        names = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True))
        items = "".join(f', "{n}": {draw(field_value(n))}' for n in names)
        return f"{{{base}{items}}}".encode("utf-8", "surrogatepass")
    if kind == "junk":
        return draw(
            st.one_of(st.binary(max_size=60), st.sampled_from([b'{"message": "\xed\xa0\x80"}', b"{"]))
        )
    if kind == "scalar":
        return draw(json_values).encode("utf-8", "surrogatepass")
    if kind == "empty":
        return b""
    if kind == "deep":
        return draw(deep()).encode()
    names = draw(st.lists(st.one_of(st.sampled_from(FIELDS), any_text), max_size=6, unique=True))
    items = [f"{json_string(n)}:{draw(field_value(n))}" for n in names]
    return ("{" + ",".join(items) + "}").encode("utf-8", "surrogatepass")


path_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).map(
        lambda s: quote(s, safe="")
    ),
    st.sampled_from(["%00", "a%00b", "%ED%A0%80", "%FF", "x" * 300, "..", "req_~abc", "job~0123456789ab"]),
)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    h: dict[str, str] = {}
    auth = draw(
        st.sampled_from(["client"] * 4 + ["other", "admin", "admin-as-client", "bearer", "bad", "none"])
    )
    if auth == "client":
        h["X-Muxi-Client-Key"] = CLIENT_KEY
    elif auth == "other":
        h["X-Muxi-Client-Key"] = OTHER_KEY
    elif auth == "admin":
        h["X-Muxi-Admin-Key"] = ADMIN_KEY
    elif auth == "admin-as-client":
        h["X-Muxi-Client-Key"] = ADMIN_KEY
    elif auth == "bearer":
        h["Authorization"] = draw(
            st.sampled_from([f"Bearer {CLIENT_KEY}", "Bearer", "Basic x", "bearer x y"])
        )
    elif auth == "bad":
        h[draw(st.sampled_from(["X-Muxi-Client-Key", "X-Muxi-Admin-Key"]))] = draw(header_text)
    for name in (
        "X-Muxi-User-Id",
        "Idempotency-Key",
        "X-Muxi-Idempotency-Key",
        "Last-Event-ID",
        "Content-Type",
    ):
        if draw(st.integers(0, 5)) == 0:
            h[name] = draw(
                st.one_of(header_text, st.sampled_from(["u1", "0", "x" * 300, "application/json"]))
            )
    return h


queries = st.dictionaries(
    st.one_of(
        st.sampled_from(["wait", "status", "limit", "cursor", "async", "stream", "starting_after"]),
        ascii_text,
    ),
    st.one_of(
        ascii_text,
        st.sampled_from(
            ["0", "0.1", "-1", "1e999", "nan", "pending", "completed", "201", "1", "AAAA", "true", "false"]
        ),
    ),
    max_size=3,
)


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@st.composite
def calls(draw: st.DrawFn, endpoint: Endpoint, ids: list[str], formation: str, responses: list[str]) -> Call:
    """One request to `endpoint`: a well-formed call with one part made hostile (mostly the
    body), so each hostile part reaches the code behind the parts that are right."""
    hostile = draw(st.sampled_from(["body"] * 4 + ["path", "headers", "query", "method", "all"]))

    def pick(part: str, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return draw(bad) if hostile in (part, "all") else draw(good)

    method = pick(
        "method", st.sampled_from(endpoint.methods), st.sampled_from([*endpoint.methods, *EXTRA_METHODS])
    )
    values = {
        "request_id": st.one_of(st.sampled_from(ids), path_text),
        "response_id": st.one_of(st.sampled_from(responses), path_text),
        "name": st.one_of(st.just("issue"), path_text),
        "formation_id": st.one_of(st.just(formation), path_text),
        "agent_id": st.one_of(st.just("echo"), path_text),
        "asset": st.one_of(st.just("swagger-ui.css"), path_text),
        "schedule_id": st.one_of(st.just("nightly"), path_text),
    }
    known = {
        "name": "issue",
        "formation_id": formation,
        "agent_id": "echo",
        "asset": "swagger-ui.css",
        "schedule_id": "nightly",
    }
    sampled = {"request_id": ids, "response_id": responses}
    path = endpoint.path
    for param, strategy in values.items():
        if "{" + param + "}" in path:
            good = st.sampled_from(sampled[param]) if param in sampled else st.just(known[param])
            path = path.replace("{" + param + "}", pick("path", good, strategy))
    assert "{" not in path, f"a path parameter this test does not know: {endpoint.path}"
    path += pick("path", st.just(""), st.sampled_from(["", "/", "/extra", "//"]))
    body = b""
    if method in ("POST", "PUT", "PATCH") or hostile == "all":
        good_body = st.just(good_body_of(path, method))
        body = pick("body", good_body, json_body(path))
    good_key = {"X-Muxi-Admin-Key": ADMIN_KEY} if "/schedules" in path else {"X-Muxi-Client-Key": CLIENT_KEY}
    call_headers = pick("headers", st.just(good_key), headers())
    return Call(method, path, pick("query", st.just({}), queries), call_headers, body)


def good_body_of(path: str, method: str) -> bytes:
    """A body the route takes, so the hostile part (not the body) is what gets tested."""
    if "/triggers/" in path:
        return b'{"data": {"title": "t"}}'
    if path.endswith("/v1/responses"):
        return RESPONSE_BODY
    if "/schedules" in path:
        return (
            b'{"enabled": true}'
            if method == "PATCH"
            else b'{"name": "fuzzed", "every": "1h", "message": "hi"}'
        )
    return b'{"message": "hi", "mode": "async"}'


# -- the check --------------------------------------------------------------------------------------
def check(client: httpx.Client, call: Call) -> int:
    with client.stream(
        call.method, call.path, params=call.params, headers=call.headers, content=call.body
    ) as r:
        status = r.status_code
        where = f"{call.method} {call.path} {call.params} {call.headers} {call.body[:200]!r}"
        assert status < 500, f"{status} for {where}: {r.read()[:500]!r}"
        assert not 300 <= status < 400, f"a bodiless redirect for {where}"
        if status >= 400 and call.method != "HEAD":
            doc = json.loads(r.read())
            assert set(doc) == {"error"}, where
            error = doc["error"]
            if "/v1/responses" in call.path and set(error) == OPENAI_ERROR:  # OpenAI's shape
                assert isinstance(error["type"], str) and error["type"].endswith("_error"), where
                assert isinstance(error["message"], str) and error["message"], where
                return status
            assert set(error) == {"code", "message", "details"}, where
            assert isinstance(error["code"], str) and error["code"].isupper(), where
            assert isinstance(error["message"], str) and error["message"], where
        elif r.headers.get("content-type", "").startswith("text/event-stream"):
            pass  # a live event stream: its status and headers are the answer; do not follow it
        elif call.method != "HEAD":
            r.read()
    return status


def test_no_route_answers_5xx_or_an_error_out_of_shape(fuzzed: Server) -> None:
    routes = endpoints(fuzzed)
    seed = fuzzed.client()
    ids = [
        seed.post("/v1/chat", json={"message": "seed", "mode": "async"}).json()["request_id"],
        seed.post("/v1/chat", json={"message": "s", "mode": "async", "request_id": "job-1"}).json()[
            "request_id"
        ],
        fuzzed.client(OTHER_KEY)
        .post("/v1/chat", json={"message": "o", "mode": "async"})
        .json()["request_id"],
    ]
    nightly = {"name": "nightly", "cron": "0 3 * * *", "message": "report", "overlap": "enqueue"}
    assert fuzzed.client(ADMIN_KEY, admin=True).post("/v1/schedules", json=nightly).status_code == 201
    answer = seed.post("/v1/responses", content=RESPONSE_BODY, headers={"Content-Type": "application/json"})
    responses = [answer.json()["id"], "resp_" + ids[0].removeprefix("req_")]  # a response; a chat request
    client = httpx.Client(base_url=fuzzed.base, timeout=httpx.Timeout(10.0, read=5.0))
    seen: dict[int, int] = {}
    started = time.monotonic()

    def fuzz_route(endpoint: Endpoint) -> None:
        @settings(
            max_examples=FUZZ_EXAMPLES // len(routes),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        @given(calls(endpoint, ids, fuzzed.config.name, responses))
        def fuzz(call: Call) -> None:
            status = check(client, call)
            seen[status] = seen.get(status, 0) + 1

        fuzz()

    try:
        for endpoint in routes:  # each route gets its share, whatever hypothesis prefers
            fuzz_route(endpoint)
    finally:
        client.close()
    elapsed = time.monotonic() - started
    assert sum(seen.values()) >= FUZZ_EXAMPLES * 0.9
    assert {200, 202, 401, 404, 422} <= set(seen), seen  # the fuzz reached past auth and parsing
    assert elapsed < 60, f"{elapsed:.0f} s"

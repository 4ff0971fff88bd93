"""Console sign-in, the session cookie, CSRF and the read-only viewer key, over real loopback HTTP.

The cookie authenticates every /v1 route as the key it was made from; a change made with it needs
its CSRF token and a same-site origin; a viewer (key or cookie) is refused every change, on every
route of the app's route table; sign-out revokes the session in another `errand serve` process.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from errand.api.app import create_app
from errand.api.openapi import OPERATIONS
from errand.api.session_auth import COOKIE
from errand.console_models import ConsoleSession
from tests.support.procs import serving, write_formation
from tests.support.server import (
    ADMIN_KEY,
    CLIENT_KEY,
    FORMATION,
    OTHER_KEY,
    REPO,
    Server,
    formation,
    wait_for,
)
from tests.support.sse_client import read_events

VIEWER_KEY = "viewer-key-dddddddd"
KEYS = {"client": [CLIENT_KEY, OTHER_KEY], "admin": [ADMIN_KEY], "viewer": [VIEWER_KEY]}
READ = ("GET", "HEAD")


@pytest.fixture
def srv(make_server: Callable[..., Server]) -> Server:
    return make_server(keys=KEYS)


def sign_in(srv: Server, key: str, **headers: str) -> tuple[httpx.Client, dict[str, Any]]:
    c = httpx.Client(base_url=srv.base, timeout=30)
    srv._clients.append(c)  # closed with the server's own clients
    r = c.post("/ui/session", json={"key": key}, headers=headers)
    assert r.status_code == 200, r.text
    return c, r.json()


def submit(srv: Server, key: str = CLIENT_KEY, agent: str = "echo") -> str:
    r = srv.client(key).post("/v1/chat", json={"message": "hi", "agent_id": agent, "mode": "async"})
    assert r.status_code == 202, r.text
    return str(r.json()["request_id"])


# -- sign-in -------------------------------------------------------------------------------------
def test_sign_in_sets_a_strict_http_only_cookie_and_answers_role_and_token(srv: Server) -> None:
    for key, role in ((ADMIN_KEY, "admin"), (VIEWER_KEY, "viewer")):
        before = time.time()
        r = httpx.post(f"{srv.base}/ui/session", json={"key": key})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["role"] == role and len(body["csrf_token"]) >= 32
        assert before + 28800 - 5 <= body["expires_at"] <= time.time() + 28800
        cookie = r.headers["set-cookie"]
        parts = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
        assert cookie.startswith(f"{COOKIE}=") and len(cookie.split(";")[0]) > len(COOKIE) + 40
        assert {"httponly", "samesite", "path", "max-age"} <= parts and "secure" not in parts
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Max-Age=28800" in cookie and "Path=/" in cookie
        assert r.headers["cache-control"] == "no-store"


def test_the_cookie_is_secure_over_tls_from_a_trusted_proxy_only(make_server: Callable[..., Server]) -> None:
    trusting = make_server(keys=KEYS)  # the default trusts loopback, as uvicorn's does
    r = httpx.post(
        f"{trusting.base}/ui/session", json={"key": ADMIN_KEY}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in r.headers["set-cookie"].lower()
    plain = httpx.post(f"{trusting.base}/ui/session", json={"key": ADMIN_KEY})
    assert "secure" not in plain.headers["set-cookie"].lower()
    untrusting = make_server(keys=KEYS, server={"forwarded_allow_ips": []})
    r = httpx.post(
        f"{untrusting.base}/ui/session", json={"key": ADMIN_KEY}, headers={"X-Forwarded-Proto": "https"}
    )
    assert r.status_code == 200 and "secure" not in r.headers["set-cookie"].lower()


def test_a_client_key_is_403_a_wrong_key_401_and_bad_bodies_422(srv: Server) -> None:
    r = httpx.post(f"{srv.base}/ui/session", json={"key": CLIENT_KEY})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert "set-cookie" not in r.headers
    r = httpx.post(f"{srv.base}/ui/session", json={"key": "not-a-key-at-all"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    r = httpx.post(f"{srv.base}/ui/session", json={"keys": ADMIN_KEY})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "keys"
    r = httpx.post(f"{srv.base}/ui/session", content=b"{not json")
    assert r.status_code == 400


def test_failed_sign_ins_are_rate_limited_per_address(srv: Server) -> None:
    codes = [
        httpx.post(f"{srv.base}/ui/session", json={"key": f"wrong-key-{i:04d}"}).status_code
        for i in range(10)
    ]
    assert codes == [401] * 10
    r = httpx.post(f"{srv.base}/ui/session", json={"key": ADMIN_KEY})  # even the right key waits
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_get_session_answers_the_live_session_and_401_without_one(srv: Server) -> None:
    c, made = sign_in(srv, VIEWER_KEY)
    r = c.get("/ui/session")
    assert r.status_code == 200 and r.json() == made
    assert httpx.get(f"{srv.base}/ui/session").status_code == 401
    r = httpx.get(f"{srv.base}/ui/session", cookies={COOKIE: "forged-session-id"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


def test_an_expired_session_is_401_everywhere(srv: Server) -> None:
    cookie = "an-expired-session-cookie-value"
    digest = hashlib.sha256(cookie.encode()).hexdigest()
    key_id = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:16]
    now = time.time()
    srv.run(srv.store.create_session(ConsoleSession(digest, key_id, "admin", "tok", now - 100, now - 1)))
    for path in ("/ui/session", "/v1/requests", "/v1/agents", "/v1/admin/overview"):
        r = httpx.get(f"{srv.base}{path}", cookies={COOKIE: cookie})
        assert r.status_code == 401, (path, r.text)
        assert "expired" in r.json()["error"]["message"]


# -- the cookie authenticates as its key ------------------------------------------------------------
def test_the_cookie_reads_as_the_key_it_was_made_from(srv: Server) -> None:
    mine, other = submit(srv, CLIENT_KEY), submit(srv, OTHER_KEY)
    wait_for(srv.admin(), mine)
    wait_for(srv.admin(), other)
    for key in (ADMIN_KEY, VIEWER_KEY):
        c, _ = sign_in(srv, key)
        listed = {r["request_id"] for r in c.get("/v1/requests").json()["requests"]}
        assert {mine, other} <= listed, key
        assert c.get(f"/v1/requests/{other}").json()["status"] == "completed"
        assert c.get(f"/api/{FORMATION}/v1/requests/{mine}").status_code == 200
        events = read_events(c, f"/v1/requests/{mine}/events")
        assert events.messages[-1].event == "completed"


def test_a_header_key_wins_over_the_cookie_and_needs_no_csrf(srv: Server) -> None:
    c, _ = sign_in(srv, VIEWER_KEY)
    r = c.post("/v1/chat", json={"message": "hi", "mode": "async"}, headers={"X-Muxi-Client-Key": CLIENT_KEY})
    assert r.status_code == 202, r.text


# -- CSRF -------------------------------------------------------------------------------------------
def test_a_change_with_the_cookie_needs_the_csrf_token_and_the_same_site(srv: Server) -> None:
    c, made = sign_in(srv, ADMIN_KEY)
    chat = {"message": "hi", "mode": "async"}
    token = made["csrf_token"]
    refused = [
        {},
        {"X-CSRF-Token": "wrong-token"},
        {"X-CSRF-Token": token[:-1]},
        {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
        {"X-CSRF-Token": token, "Origin": "https://evil.example"},
        {"X-CSRF-Token": token, "Origin": "null"},
    ]
    for headers in refused:
        r = c.post("/v1/chat", json=chat, headers=headers)
        assert r.status_code == 403, (headers, r.text)
        assert r.json()["error"]["code"] == "CSRF_FAILED"
    assert srv.admin().get("/v1/requests").json()["requests"] == []  # nothing was submitted
    host = srv.base.removeprefix("http://")
    for headers in (
        {"X-CSRF-Token": token},
        {"X-CSRF-Token": token, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"},
    ):
        r = c.post("/v1/chat", json=chat, headers=headers)
        assert r.status_code == 202, (headers, r.text)
    rid = r.json()["request_id"]
    wait_for(srv.admin(), rid)
    r = c.post(f"/v1/requests/{rid}/redeliver")  # no webhook; CSRF is checked first
    assert r.json()["error"]["code"] == "CSRF_FAILED"


# -- viewers change nothing, on any route -----------------------------------------------------------
def mutating_routes(srv: Server) -> Iterator[tuple[str, str]]:
    """(method, path) of every authenticated route of the running app's route table that is not a
    read, path parameters filled in; also under the /api/{formation_id} mount."""
    public = {op.path for op in OPERATIONS if op.auth == "none"}
    fill = {
        "request_id": "req_0123456789abcdef",
        "response_id": "resp_0123456789abcdef",
        "schedule_id": "nightly",
        "name": "some-trigger",
        "agent_id": "echo",
        "asset": "x",
    }

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, Mount):
                yield from walk(route.routes, prefix + route.path.replace("{formation_id}", FORMATION))
            elif isinstance(route, Route) and route.path not in public:
                for method in sorted(route.methods or ()):
                    if method not in READ:
                        yield method, prefix + route.path.format(**fill)

    yield from walk(create_app(srv.config).routes, "")  # the route table the server was built with


def test_a_viewer_is_refused_every_change_on_every_route(srv: Server) -> None:
    found = list(mutating_routes(srv))
    assert ("POST", "/v1/chat") in found and ("DELETE", "/v1/requests/req_0123456789abcdef") in found
    assert ("POST", f"/api/{FORMATION}/v1/chat") in found
    viewer = srv.client(VIEWER_KEY)
    bearer = httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {VIEWER_KEY}"}, timeout=30)
    srv._clients.append(bearer)
    cookie, made = sign_in(srv, VIEWER_KEY)
    for method, path in found:
        for c, headers in ((viewer, {}), (bearer, {}), (cookie, {"X-CSRF-Token": made["csrf_token"]})):
            r = c.request(method, path, json={"message": "x"}, headers=headers)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"]["code"].upper() == "FORBIDDEN"  # /v1/responses: OpenAI's shape
    assert srv.admin().get("/v1/requests").json()["requests"] == []


def test_a_viewer_reads_everything_an_admin_reads_but_the_secret(srv: Server) -> None:
    rid = submit(srv, CLIENT_KEY, agent="fail")
    wait_for(srv.admin(), rid)
    viewer = srv.client(VIEWER_KEY)
    [attempt] = viewer.get(f"/v1/requests/{rid}/attempts").json()["attempts"]
    assert "PermanentError" in (attempt["traceback"] or "")
    assert viewer.get("/v1/agents").status_code == 200
    r = viewer.get("/v1/admin/webhook-secret")
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    r = srv.client(VIEWER_KEY, admin=True).get("/v1/requests")  # the admin header takes admin keys only
    assert r.status_code == 401


# -- sign-out ---------------------------------------------------------------------------------------
def test_sign_out_needs_the_token_and_revokes_the_session_in_another_process(
    srv: Server, tmp_path: Path
) -> None:
    c, made = sign_in(srv, VIEWER_KEY)  # a viewer may sign out: it is no change of errand's data
    data = formation(tmp_path, keys=KEYS)
    config = write_formation(tmp_path / "other", data)
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with serving(config, tmp_path / "other.log", "--no-workers", env=env) as (base, _proc):
        cookies = {COOKIE: c.cookies[COOKIE]}
        assert httpx.get(f"{base}/ui/session", cookies=cookies).json() == made
        assert httpx.get(f"{base}/v1/requests", cookies=cookies).status_code == 200
        assert c.delete("/ui/session").status_code == 403  # no CSRF token
        r = c.delete("/ui/session", headers={"X-CSRF-Token": made["csrf_token"]})
        assert r.status_code == 204
        assert f'{COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
        assert httpx.get(f"{base}/ui/session", cookies=cookies).status_code == 401
        assert httpx.get(f"{base}/v1/requests", cookies=cookies).status_code == 401
    assert httpx.get(f"{srv.base}/v1/requests", cookies=cookies).status_code == 401

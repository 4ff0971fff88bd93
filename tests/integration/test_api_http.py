"""The HTTP surface over real loopback: auth, route aliases, health/ready/metrics, bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx

from errand import __version__
from tests.support.server import ADMIN_KEY, CLIENT_KEY, FORMATION, Server, wait_for


def test_missing_or_wrong_key_is_401_with_www_authenticate(server: Server) -> None:
    for headers in [
        {},
        {"X-Muxi-Client-Key": "wrong-key-123456"},
        {"Authorization": "Bearer wrong-key-123456"},
        {"Authorization": f"Basic {CLIENT_KEY}"},
        {"X-Muxi-Admin-Key": CLIENT_KEY},  # a client key is not an admin key
        {"X-Muxi-Admin-Key": "nope-nope-nope", "X-Muxi-Client-Key": CLIENT_KEY},
    ]:
        c = server.client(key=None)
        for r in [
            c.post("/v1/chat", json={"message": "hi"}, headers=headers),
            c.get("/v1/requests", headers=headers),
        ]:
            assert r.status_code == 401, headers
            assert r.json()["error"]["code"] == "UNAUTHORIZED"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert CLIENT_KEY not in r.text


def test_keys_are_accepted_in_every_documented_header(server: Server) -> None:
    c = server.client(key=None)
    for headers in [
        {"X-Muxi-Client-Key": CLIENT_KEY},
        {"x-muxi-client-key": CLIENT_KEY, "X-MUXI-USER-ID": "u1"},
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        {"X-Muxi-Admin-Key": ADMIN_KEY},
    ]:
        assert c.get("/v1/requests", headers=headers).status_code == 200, headers


def test_user_id_header_is_validated(server: Server) -> None:
    for user in ["", "has space", "a/b", "x" * 129, "ünï"]:
        headers = {b"X-Muxi-Client-Key": CLIENT_KEY.encode(), b"X-Muxi-User-Id": user.encode()}
        r = server.client(key=None).get("/v1/requests", headers=headers)
        assert r.status_code == 422, user
        assert r.json()["error"]["details"]["field"] == "X-Muxi-User-Id"
    ok = server.client(user="user@example.com").get("/v1/requests")
    assert ok.status_code == 200


def test_formation_alias_and_wrong_formation(server: Server) -> None:
    c = server.client()
    base = f"/api/{FORMATION}/v1"
    r = c.post(f"{base}/chat", json={"message": "hi", "mode": "async"})
    assert r.status_code == 202
    rid = r.json()["request_id"]
    assert r.headers["location"] == f"{base}/requests/{rid}" == r.json()["poll_url"]
    assert c.get(f"{base}/requests/{rid}", params={"wait": 5}).json()["status"] == "completed"
    assert c.get(f"/v1/requests/{rid}").json()["status"] == "completed"
    assert [d["request_id"] for d in c.get(f"{base}/requests").json()["requests"]] == [rid]
    assert c.get(f"{base}/health").json() == {"status": "ok", "version": __version__}
    for method, path in [
        ("POST", "/api/other/v1/chat"),
        ("GET", f"/api/other/v1/requests/{rid}"),
        ("GET", "/api/other/v1/requests"),
        ("DELETE", f"/api/other/v1/requests/{rid}"),
        ("GET", "/api/other/v1/health"),
    ]:
        r = c.request(method, path, json={"message": "hi"} if method == "POST" else None)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"


def test_health_ready_metrics_need_no_key(server: Server) -> None:
    c = server.client(key=None)
    assert c.get("/health").json() == {"status": "ok", "version": __version__}
    assert c.get("/v1/health").json() == {"status": "ok", "version": __version__}
    r = c.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    server.client().post("/v1/chat", json={"message": "count me", "mode": "sync"})
    m = c.get("/metrics")
    assert m.status_code == 200
    assert m.headers["content-type"].startswith("text/plain")
    assert 'errand_requests_total{agent="echo",kind="chat",status="accepted"}' in m.text


def test_unknown_route_and_wrong_method(server: Server) -> None:
    c = server.client()
    r = c.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    r = c.put("/v1/chat", json={"message": "hi"})
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in r.headers["allow"]
    r = c.post("/v1/requests/abc")
    assert r.status_code == 405
    assert {"GET", "DELETE"} <= {m.strip() for m in r.headers["allow"].split(",")}
    assert c.head("/v1/requests/req_unknown").status_code == 404


def test_malformed_and_invalid_bodies(server: Server) -> None:
    c = server.client()
    cases: list[tuple[bytes, int, str | None]] = [
        (b'{"message": "hi"', 400, None),
        (b"", 400, None),
        (b"not json", 400, None),
        (b"[1, 2]", 422, None),
        (b'"hello"', 422, None),
        (b"{}", 422, "message"),
        (b'{"message": ""}', 422, "message"),
        (b'{"message": "   \\n"}', 422, "message"),
        (b'{"message": 42}', 422, "message"),
        (b'{"message": ["a"]}', 422, "message"),
        (b'{"message": "x", "metadata": "m"}', 422, "metadata"),
        (b'{"message": "x", "threshold_seconds": "5"}', 422, "threshold_seconds"),
        (b'{"message": "x", "threshold_seconds": -1}', 422, "threshold_seconds"),
        (b'{"message": "x", "session_id": 7}', 422, "session_id"),
        (b'{"message": "x", "stream": "no"}', 422, "stream"),
        (b'{"mesage": "hi"}', 422, "mesage"),
        (b'{"message": "hi", "files": []}', 422, "files"),
    ]
    for body, status, field in cases:
        r = c.post("/v1/chat", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (body, r.text)
        err = r.json()["error"]
        assert err["code"] == "INVALID_REQUEST"
        if field is not None:
            assert err["details"][0]["field"] == field, (body, err)
            assert err["message"].startswith(field)
    typo = c.post("/v1/chat", json={"mesage": "hi"}).json()["error"]
    assert "did you mean 'message'" in typo["message"]
    assert c.get("/v1/requests").json()["count"] == 0


def test_body_without_json_content_type_is_accepted(server: Server) -> None:
    r = server.client().post(
        "/v1/chat", content=b'{"message": "curl -d"}', headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 200
    assert r.json()["result"]["text"] == "echo: curl -d"


def test_oversize_bodies_are_413(make_server: Callable[..., Server]) -> None:
    srv = make_server(server={"max_body_bytes": 4096})
    c = srv.client()
    big = {"message": "x" * 5000}
    r = c.post("/v1/chat", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        yield b'{"message": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = c.post("/v1/chat", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert c.post("/v1/chat", json={"message": "x" * 3000, "mode": "sync"}).status_code == 200


def test_junk_never_causes_a_5xx(server: Server) -> None:
    c = server.client()
    bodies = [
        b"null",
        b"true",
        b"1e999",
        b"{" * 5000,
        b"[" * 100_000,
        b"\xff\xfe\x00",
        b'{"message": "\\ud800"}',
        b'{"message": null}',
        b'{"message": {"a": 1}}',
        b'{"message": "x", "agent_id": ""}',
        b'{"message": "x", "agent_id": "../../etc"}',
        b'{"message": "x", "request_id": null}',
        b'{"message": "x", "webhook_url": "http://[::1"}',
        b'{"message": "x", "webhook_url": "javascript:alert(1)"}',
        b'{"message": "x", "webhook_url": "http://0x7f.1/"}',
        b'{"message": "x", "webhook_url": "http://u:p@127.0.0.1/"}',
        b'{"message": "x", "webhook_url": 5}',
        b'{"message": "x", "threshold_seconds": 1e308}',
        b'{"message": "x", "mode": null, "async": null, "use_async": null, "async_": true}',
        b'{"message": "x", "metadata": {"k": [1, {"deep": null}]}, "session_id": "s"}',
        b'{"message": "x", "metadata": null}',
        b'{"message": "x", "threshold_seconds": 1e400}',
        b'{"message": "x", "message": "y"}',
        b'{"": ""}',
        '{"message": "é ✓ 𝄞"}'.encode(),
    ]
    statuses = []
    for body in bodies:
        r = c.post("/v1/chat", content=body, headers={"Content-Type": "application/json"})
        statuses.append(r.status_code)
        assert r.status_code < 500, (body[:60], r.text)
        if r.status_code >= 400:
            assert set(r.json()["error"]) == {"code", "message", "details"}
    assert 400 in statuses and 422 in statuses
    for path in [
        "/v1/requests/%00",
        "/v1/requests/" + "a" * 4000,
        "/v1/requests?limit=-1",
        "/v1/requests?cursor=" + "z" * 600,
        "/v1/requests?status=",
        "/v1/requests?limit=%F0%9F%92%A9",
        "/v1/requests/x?wait=%00",
        "/v1/requests/x?wait=1e309",
        "/v1/requests?cursor=eyJ4IjoxfQ",
        "/api/%2e%2e/v1/requests",
        "/v1/requests/..%2f..%2f",
    ]:
        r = c.get(path)
        assert r.status_code < 500, (path, r.text)
    for headers in [{"Idempotency-Key": "x" * 300}, {"X-Muxi-User-Id": "\t"}, {"Content-Length": "abc"}]:
        try:
            r = c.post("/v1/chat", content=b'{"message": "h"}', headers=headers)
        except httpx.HTTPError:
            continue  # the HTTP parser itself refused it before the app: fine
        assert r.status_code < 500, (headers, r.text)


def test_sync_document_matches_get_and_the_alias(server: Server) -> None:
    c = server.client()
    doc = c.post("/v1/chat", json={"message": "same", "mode": "sync", "session_id": "s-1"}).json()
    assert doc["session_id"] == "s-1"
    got = [
        c.get(f"/v1/requests/{doc['request_id']}").json(),
        c.get(f"/api/{FORMATION}/v1/requests/{doc['request_id']}").json(),
        wait_for(c, doc["request_id"]),
    ]
    for shown in got:  # GET alone adds what was submitted; the rest is the sync answer
        assert shown.pop("input")["session_id"] == "s-1"
        assert shown == doc

"""Over real HTTP: a trailing slash names the same route (never a bodiless 307), and a refused
webhook URL says which class of address was refused, never the address a name resolved to
(issue 9, item 13)."""

from __future__ import annotations

import pytest

from errand import __version__
from tests.support.server import Server, wait_for


def test_a_trailing_slash_is_the_same_route(server: Server) -> None:
    c = server.client()
    r = c.post("/v1/chat/", json={"message": "hi", "mode": "async"}, follow_redirects=False)
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    assert wait_for(c, rid)["status"] == "completed"
    for path in (f"/v1/requests/{rid}/", "/v1/requests/", f"/api/{server.config.name}/v1/requests/{rid}//"):
        got = c.get(path, follow_redirects=False)
        assert got.status_code == 200, (path, got.status_code, got.text)
    assert c.get("/health/", follow_redirects=False).json() == {"status": "ok", "version": __version__}


@pytest.mark.parametrize("path", ["/nowhere/", "/v1/", "/v1/chat/extra/", "/api/"])
def test_unknown_paths_with_a_slash_answer_in_the_error_shape(server: Server, path: str) -> None:
    r = server.client().get(path, follow_redirects=False)
    assert r.status_code == 404, (path, r.status_code)
    assert set(r.json()["error"]) == {"code", "message", "details"}


def test_a_refused_name_says_the_class_not_the_address(server: Server) -> None:
    c = server.client()
    r = c.post("/v1/chat", json={"message": "x", "webhook_url": "http://localhost:9/hook"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert "loopback" in error["message"] and error["details"] == {"field": "webhook_url"}
    assert "127.0.0.1" not in r.text and "::1" not in r.text
    literal = c.post("/v1/chat", json={"message": "x", "webhook_url": "http://[::ffff:10.0.0.1]/h"})
    assert literal.status_code == 422
    assert "IPv6 form of a private address" in literal.json()["error"]["message"]

"""Agent code that misbehaves fails its own request, once, and never the server (issue 9, items 3
and 5), over a real `errand serve` process on SQLite and on PostgreSQL.

* An agent raising SystemExit, KeyboardInterrupt or another BaseException used to kill the
  server, and the re-claimed request killed it again on restart (a crash loop).
* An unstorable result (object(), a set, lone surrogates, too deep, NUL, a 70-bit int) crashed
  the attempt: `processing` for three lease periods, the agent run three times, then WorkerLost.
* A result over async.max_result_bytes fails clearly; GET /v1/requests carries no results.

Each agent call appends `<request id> <attempt>` to runs.log, so the test counts runs.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import serving, write_formation
from tests.support.server import wait_for

pytestmark = pytest.mark.slow

KEY = "faults-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}

AGENTS = r"""
import asyncio, os

_LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")


def _ran(ctx):
    with open(_LOG, "a") as f:
        f.write(f"{ctx.request_id} {ctx.attempt}\n")


class Custom(BaseException):
    pass


def sys_exit(message, ctx):          # sync: raised in a worker thread
    _ran(ctx)
    raise SystemExit(3)


async def interrupt(message, ctx):   # async: raised on the event loop itself
    _ran(ctx)
    raise KeyboardInterrupt("agent pressed ctrl-c")


async def async_exit(message, ctx):
    _ran(ctx)
    raise SystemExit("bye")


async def custom(message, ctx):
    _ran(ctx)
    raise Custom("not an Exception")


def ok(message, ctx):
    _ran(ctx)
    return f"ok {message}"


BAD = {
    "object": lambda: {"text": "x", "thing": object()},
    "set": lambda: {"text": "x", "tags": {1, 2}},
    "surrogate": lambda: "lone \ud800 surrogate",
    "deep": lambda: {"text": "x", "tree": __import__("functools").reduce(lambda a, _: [a], range(100), 0)},
    "nul": lambda: {"text": "x", "raw": "a\x00b"},
    "bigint": lambda: {"text": "x", "n": 2 ** 70},
    "nan": lambda: {"text": "x", "score": float("nan")},
    "key": lambda: {"text": "x", "map": {1: "one"}},
}


def unstorable(message, ctx):
    _ran(ctx)
    return BAD[message]()


def big(message, ctx):
    _ran(ctx)
    return "x" * int(message)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite:///faults.db"
    url: str = request.getfixturevalue("pg_fresh_url")
    return url


def formation(tmp: Path, url: str, **async_: Any) -> Path:
    names = ["sys_exit", "interrupt", "async_exit", "custom", "ok", "unstorable", "big"]
    return write_formation(
        tmp,
        {
            "name": "faults",
            "keys": {"client": [KEY], "admin": ["faults-admin-key"]},
            "storage": {"url": url},
            "async": async_,
            "workers": {"concurrency": 16, "lease_seconds": 2, "poll_interval": 0.2},
            "workflow": {"task_timeout": 30, "retry": {"max_attempts": 3, "initial_delay": 0.05}},
            "agents": [{"id": n.replace("_", "-"), "handler": f"slow_agents:{n}"} for n in names],
        },
        AGENTS,
    )


def runs(tmp: Path) -> list[str]:
    """The request id of each agent call, in order."""
    log = tmp / "runs.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def submit(c: httpx.Client, agent: str, message: str = "hi") -> str:
    r = c.post("/v1/chat", json={"message": message, "agent_id": agent, "mode": "async"})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def test_base_exceptions_fail_their_request_not_the_server(tmp_path: Path, storage_url: str) -> None:
    cfg = formation(tmp_path, storage_url)
    expected = {"sys-exit": "SystemExit", "interrupt": "KeyboardInterrupt", "async-exit": "SystemExit"}
    expected["custom"] = "Custom"
    with serving(cfg, tmp_path / "serve1.log") as (base, proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            ids = {agent: submit(c, agent) for agent in expected}
            for agent, rid in ids.items():
                doc = wait_for(c, rid)
                assert doc["status"] == "failed", (agent, doc, proc.tail())
                assert doc["error"]["type"] == expected[agent]
                assert doc["error"]["retryable"] is False
                assert doc["attempts"] == 1
            assert proc.p is not None and proc.p.poll() is None, proc.tail()
            assert c.get("/health").status_code == 200
            assert wait_for(c, submit(c, "ok", "next"))["result"]["text"] == "ok next"
        log = proc.log.read_text()
        assert all(rid in log for rid in ids.values())  # the operator sees each failure, by id
        proc.kill()
    # a restart finds nothing to crash on: it stays up past a lease period and serves
    with serving(cfg, tmp_path / "serve2.log") as (base, proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            time.sleep(2.5)
            assert proc.p is not None and proc.p.poll() is None, proc.tail()
            for rid in ids.values():
                assert c.get(f"/v1/requests/{rid}").json()["status"] == "failed"
            assert wait_for(c, submit(c, "ok", "after"))["status"] == "completed"
    ran = runs(tmp_path)
    assert len(ran) == len(expected) + 2 and all(ran.count(rid) == 1 for rid in ids.values()), ran


def test_unstorable_results_fail_once_at_once(tmp_path: Path, storage_url: str) -> None:
    cfg = formation(tmp_path, storage_url)  # async.max_result_bytes: its default, 10 MiB
    kinds = ["object", "set", "surrogate", "deep", "nul", "bigint", "nan", "key"]
    with serving(cfg, tmp_path / "serve.log") as (base, proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            started = time.monotonic()
            ids = {kind: submit(c, "unstorable", kind) for kind in kinds}
            too_big = submit(c, "big", str(20 * 1024 * 1024))
            docs = {kind: wait_for(c, rid) for kind, rid in ids.items()}
            big_doc = wait_for(c, too_big)
            elapsed = time.monotonic() - started
            for kind, doc in docs.items():
                assert doc["status"] == "failed", (kind, doc)
                assert doc["error"]["type"] == "ResultNotStorable", (kind, doc)
                assert doc["error"]["message"].startswith("result is not JSON-serializable: result"), doc
                assert doc["error"]["retryable"] is False and doc["attempts"] == 1
            assert "tree" in docs["deep"]["error"]["message"] and "64" in docs["deep"]["error"]["message"]
            assert "NUL" in docs["nul"]["error"]["message"]
            assert big_doc["status"] == "failed" and big_doc["error"]["type"] == "ResultNotStorable"
            message = big_doc["error"]["message"]
            shown = re.search(r"result is too large: (\d+) bytes as JSON", message)
            assert shown and int(shown[1]) > 20 * 1024 * 1024, message
            assert "(async.max_result_bytes is 10485760)" in message
            assert elapsed < 5  # at once: no lease period (2 s) waited, let alone three
            assert c.get("/health").status_code == 200
            assert wait_for(c, submit(c, "ok"))["status"] == "completed"
    ran, log = runs(tmp_path), proc.log.read_text()
    for rid in [*ids.values(), too_big]:
        assert ran.count(rid) == 1, rid  # the agent ran once: no side effect repeated
        assert f"request {rid}: result is" in log  # the operator sees why, by request id


def test_the_list_carries_no_results(tmp_path: Path, storage_url: str) -> None:
    cfg = formation(tmp_path, storage_url)
    size = 2 * 1024 * 1024
    with serving(cfg, tmp_path / "serve.log") as (base, _):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as c:
            ids = [submit(c, "big", str(size)) for _ in range(10)]
            for rid in ids:
                assert wait_for(c, rid, 30)["status"] == "completed"
            r = c.get("/v1/requests", params={"limit": 50})
            assert r.status_code == 200
            assert len(r.content) < 20_000, len(r.content)  # ten 2 MB results, a few KB of list
            items = r.json()["requests"]
            assert {i["request_id"] for i in items} == set(ids)
            assert all(i["status"] == "completed" and "result" not in i for i in items)
            one = c.get(f"/v1/requests/{ids[0]}").json()  # the status document is unchanged
            assert len(one["result"]["text"]) == size and one["result"]["agent"] == "big"

"""A question survives its server: the request asks, `errand serve` is SIGKILLed, a new one
starts on the same database, the answer is POSTed, and the request resumes and completes with a
result that used the answer. On SQLite and on PostgreSQL.

Nothing of the waiting request lives in a process: the question, the answers and the kept state
are columns of its row, and the worker that ran the first attempt holds no lease while it waits.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import serving, write_formation

pytestmark = pytest.mark.slow

KEY = "input-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}
AGENTS = '''
from pathlib import Path

RUNS = Path(__file__).with_name("runs.txt")


async def asker(message, ctx):
    """Records each start (the test counts them), then asks; greets with the answer."""
    with RUNS.open("a") as out:
        out.write(ctx.request_id + "\\n")
    answer = await ctx.ask("Approve the deploy?", schema={"type": "object", "required": ["approved"]})
    return {"text": f"{message}: approved={answer['approved']} by {answer.get('by')}"}
'''


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_fresh_url")
        return url
    return f"sqlite:///{tmp_path / 'input.db'}"


def _get(base: str, rid: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/v1/requests/{rid}", params={"wait": 2}, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def _until(base: str, rid: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (doc := _get(base, rid))["status"] != status:
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)
    return doc


def test_the_answer_after_a_sigkill_and_restart_resumes_the_request(tmp_path: Path, storage_url: str) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "inputs",
            "keys": {"client": [KEY]},
            "storage": {"url": storage_url},
            "workers": {"concurrency": 2, "lease_seconds": 5, "poll_interval": 0.2},
            "agents": [{"id": "asker", "handler": "slow_agents:asker", "default": True}],
        },
        AGENTS,
    )
    with serving(cfg, tmp_path / "serve1.log") as (base, proc):
        r = httpx.post(
            f"{base}/v1/chat", json={"message": "deploy", "mode": "async"}, headers=HEADERS, timeout=10
        )
        assert r.status_code == 202, r.text
        rid = r.json()["request_id"]
        question = _until(base, rid, "input_required")["input_request"]
        assert question["prompt"] == "Approve the deploy?"
        proc.kill()  # SIGKILL: no shutdown code runs

    with serving(cfg, tmp_path / "serve2.log") as (base, _):
        doc = _get(base, rid)
        assert doc["status"] == "input_required" and doc["input_request"] == question
        body = {"input_id": question["id"], "value": {"approved": True, "by": "ops"}}
        r = httpx.post(f"{base}/v1/requests/{rid}/input", json=body, headers=HEADERS, timeout=10)
        assert r.status_code == 202, r.text
        done = _until(base, rid, "completed")
        assert done["result"]["text"] == "deploy: approved=True by ops"
        assert done["attempts"] == 2
        attempts = httpx.get(f"{base}/v1/requests/{rid}/attempts", headers=HEADERS, timeout=10).json()
        assert [a["outcome"] for a in attempts["attempts"]] == ["input_required", "completed"]
    runs = (tmp_path / "runs.txt").read_text().split()
    assert runs == [rid, rid]  # run twice: once to ask, once (after the restart) to finish

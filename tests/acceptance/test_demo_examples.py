"""The README's quick examples against the demo formation (examples/demo/, what ./run serves),
served by a real `errand serve`: the sync chat and the sync trigger answer 200 with the result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.procs import serving

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "formation.yaml"
HEADERS = {"X-Muxi-Client-Key": "demo-client-key", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("demo")
    env = {
        "ERRAND_STORAGE_URL": f"sqlite:///{folder / 'demo.db'}",
        "ERRAND_CLIENT_KEY": "demo-client-key",
        "ERRAND_ADMIN_KEY": "demo-admin-key",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
    }
    with serving(DEMO, folder / "serve.log", env=env) as (base, _):
        yield base


def test_the_sync_chat_example_answers_200_with_the_message(demo: str) -> None:
    r = httpx.post(
        f"{demo}/v1/chat", headers=HEADERS, json={"message": "hi", "agent_id": "echo", "mode": "sync"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["result"]["text"] == "hi"  # not "echo: hi"


def test_the_sync_trigger_example_answers_200(demo: str) -> None:
    body = {
        "data": {"issue": {"number": 7, "title": "Crash", "body": None, "labels": [{"name": "bug"}]}},
        "use_async": False,
    }
    r = httpx.post(
        f"{demo}/v1/triggers/echo-issue",
        headers={**HEADERS, "X-Muxi-Idempotency-Key": "gh-delivery-8c1f"},
        json=body,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "completed" and doc["result"]["text"] == "Issue #7: Crash"
    assert doc["kind"] == "trigger" and doc["trigger"] == "echo-issue"


def test_the_demo_lists_both_triggers(demo: str) -> None:
    listed = httpx.get(f"{demo}/v1/triggers", headers=HEADERS).json()
    assert {t["name"]: t["use_async"] for t in listed["triggers"]} == {
        "echo-issue": False,
        "github-issue": True,
    }

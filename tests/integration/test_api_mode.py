"""Auto mode over HTTP: the estimate learns from the agent's history (pure rules: unit/test_mode.py)."""

from __future__ import annotations

import time

from tests.support.server import Server


def test_auto_mode_learns_from_the_agents_history(server: Server) -> None:
    c = server.client()
    body = {"message": "hi", "threshold_seconds": 1.0}
    first = c.post("/v1/chat", json=body)
    assert first.status_code == 202  # no history: the heuristic says about 2 s, over 1 s
    assert first.json()["estimated_seconds"] > 1.0
    for _ in range(3):
        assert c.post("/v1/chat", json={"message": "hi", "mode": "sync"}).status_code == 200
    time.sleep(0.25)  # a history too short to use is cached for SHORT_HISTORY_TTL_S (0.2 s)
    learned = c.post("/v1/chat", json=body)
    assert learned.status_code == 200  # echo really takes milliseconds: sync now

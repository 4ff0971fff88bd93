"""The sync/async decision: its order (pure) and the estimate learning from history (over HTTP)."""

from __future__ import annotations

import time

import pytest

from errand.mode import decide, estimate_seconds
from errand.models import Mode
from tests.support.server import Server


@pytest.mark.parametrize(
    ("explicit", "webhook", "config_mode", "estimate", "expected"),
    [
        (Mode.SYNC, "http://h/x", "async", 100.0, Mode.SYNC),  # explicit beats webhook and config
        (Mode.ASYNC, None, "sync", 0.0, Mode.ASYNC),
        (None, "http://h/x", "sync", 0.0, Mode.ASYNC),  # webhook beats config
        (Mode.AUTO, "http://h/x", "sync", 0.0, Mode.ASYNC),  # explicit auto still honours a webhook
        (None, None, "sync", 100.0, Mode.SYNC),  # config mode beats the estimate
        (None, None, "async", 0.0, Mode.ASYNC),
        (Mode.AUTO, None, "sync", 100.0, Mode.ASYNC),  # explicit auto overrides config mode
        (None, None, "auto", 29.9, Mode.SYNC),
        (None, None, "auto", 30.0, Mode.ASYNC),  # at the threshold: async
    ],
)
def test_decision_order(
    explicit: Mode | None, webhook: str | None, config_mode: str, estimate: float, expected: Mode
) -> None:
    assert decide(explicit, webhook, config_mode, estimate, 30.0) is expected


def test_estimate_uses_p90_of_history_once_there_are_three_samples() -> None:
    assert estimate_seconds("hi", [100.0, 100.0]) < 5  # too little history: the heuristic
    assert estimate_seconds("hi", [1.0, 2.0, 3.0]) == 3.0
    assert estimate_seconds("research everything", [float(i) for i in range(1, 11)]) == 9.0


def test_estimate_heuristic_grows_with_the_work_asked_for() -> None:
    short = estimate_seconds("What time is it?", [])
    heavy = estimate_seconds("Research competitor pricing and create a comparison spreadsheet", [])
    steps = estimate_seconds("1. fetch the data\n2. clean it\n3. chart it\nthen email me. Why? How?", [])
    assert short < 5 < steps and heavy >= 30
    assert estimate_seconds("x" * 1_000_000, []) <= 3600


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

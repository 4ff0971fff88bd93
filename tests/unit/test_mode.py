"""errand.mode: the sync/async decision order and the duration estimate (history, heuristic, tools)."""

from __future__ import annotations

import pytest

from errand.mode import TOOL_ROUND_S, decide, estimate_seconds
from errand.models import Mode


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


def test_tools_and_max_steps_raise_the_estimate_only_when_they_can_be_used() -> None:
    message = "Research the market and compare prices"
    plain = estimate_seconds(message, [])
    assert estimate_seconds(message, [], tool_count=0, max_steps=8) == plain  # no tools: one call
    assert estimate_seconds(message, [], tool_count=3, max_steps=1) == plain  # no step to use them
    with_tools = estimate_seconds(message, [], tool_count=3, max_steps=8)
    # two heavy stems -> three expected tool rounds, plus the three schemas
    assert with_tools == pytest.approx(plain + 3 * TOOL_ROUND_S + 0.75)
    capped = estimate_seconds(message, [], tool_count=3, max_steps=2)
    assert capped == pytest.approx(plain + TOOL_ROUND_S + 0.75)  # one round left after the answer
    assert estimate_seconds(message, [1.0, 2.0, 3.0], tool_count=9, max_steps=50) == 3.0  # history wins

"""Sync or async: the mode decision and the duration estimate it rests on. Pure.

The decision order is the contract's, and lives only here so the HTTP layer cannot drift:

1. an explicit `sync` / `async` in the request wins;
2. else a webhook URL (from the request or the config) means async: the caller asked to be
   called back, so holding the connection open would only waste it;
3. else the mode named by the request (`mode: "auto"`) or, failing that, config `async.mode`;
4. in `auto`: async when the estimated duration >= the threshold, sync otherwise.
"""

from __future__ import annotations

import math
import re

from errand.models import Mode

MIN_HISTORY = 3
"""Below this many observed durations the history says too little; the heuristic is used."""

MAX_ESTIMATE = 3600.0

TOOL_ROUND_S = 4.0
"""One tool round of a model agent: a model call that asks for tools, then the tools running."""
TOOL_SCHEMA_S = 0.25
"""Per tool offered to the model: its schema is sent (and read) with every model call."""

_HEAVY = re.compile(
    r"\b(research|analy[sz]|compar|report|spreadsheet|investigat|summari[sz]|benchmark|"
    r"comprehensive|in[- ]depth|detailed|evaluat|audit|translat|refactor|review|plan)\w*",
    re.IGNORECASE,
)
_STEP = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+\S|\b(?:then|after that|finally|next)\b", re.IGNORECASE)


def decide(
    explicit: Mode | None,
    webhook_url: str | None,
    config_mode: str,
    estimate_s: float,
    threshold_s: float,
) -> Mode:
    """Decide sync or async (never returns AUTO).

    `explicit` is what the request said (`mode`, `async` or `use_async`); an explicit AUTO
    only overrides the configured mode, so a webhook still makes it async.
    """
    if explicit is Mode.SYNC or explicit is Mode.ASYNC:
        return explicit
    if webhook_url:
        return Mode.ASYNC
    mode = explicit or Mode(config_mode)
    if mode is not Mode.AUTO:
        return mode
    return Mode.ASYNC if estimate_s >= threshold_s else Mode.SYNC


def estimate_seconds(
    message: str,
    history: list[float],
    *,
    tool_count: int = 0,
    max_steps: int = 1,
    expected: float | None = None,
) -> float:
    """Expected run time of a request, in seconds.

    With at least MIN_HISTORY observed durations of the agent (newest first), the answer is
    their p90 (nearest rank): what the agent really takes beats any guess about the text.
    Else the agent's configured `expected_seconds`, when it has one: its author knows better
    than a guess from the text (a 1 ms handler is not a 72 s research task).

    Without history, a heuristic on the message, tuned so that a one-line question stays
    well under the default 30 s threshold and the seed's example ("research competitor
    pricing and create a comparison spreadsheet") lands above it:

    - 2 s base (one model round trip);
    - + 1 s per 400 characters (reading and writing long texts), at most 30 s;
    - + 10 s per distinct heavy-work word stem (research, analyse, compare, report,
      spreadsheet, investigate, summarise, benchmark, comprehensive, in-depth, detailed,
      evaluate, audit, translate, refactor, review, plan) -- each usually means tool calls;
    - + 3 s per question beyond the first (each `?` is another answer to produce);
    - + 4 s per enumerated step or sequencing word (list items, "then", "next", "finally");
    - for an agent with tools (`tool_count` > 0, a model agent allowed `max_steps` model
      calls): + TOOL_ROUND_S per expected tool round -- one, plus one per heavy stem or step
      of the message, but never more than the `max_steps - 1` rounds the agent may take --
      and + TOOL_SCHEMA_S per tool offered (their schemas lengthen every prompt). An agent
      without tools answers in one model call, whatever its max_steps;

    capped at one hour.
    """
    if len(history) >= MIN_HISTORY:
        return _p90(history)
    if expected is not None:
        return expected
    text = message.strip()
    estimate = 2.0
    estimate += min(30.0, len(text) / 400.0)
    stems = {m.group(1).lower().replace("z", "s").replace(" ", "-") for m in _HEAVY.finditer(text)}
    estimate += 10.0 * len(stems)
    estimate += 3.0 * max(0, text.count("?") - 1)
    steps = len(_STEP.findall(text))
    estimate += 4.0 * steps
    estimate += _tool_seconds(tool_count, max_steps, 1 + len(stems) + steps)
    return round(min(MAX_ESTIMATE, estimate), 3)


def _tool_seconds(tool_count: int, max_steps: int, wanted_rounds: int) -> float:
    """What tool use adds: nothing without tools or without a step left to use them in."""
    if tool_count <= 0 or max_steps <= 1:
        return 0.0
    rounds = min(max_steps - 1, wanted_rounds)
    return TOOL_ROUND_S * rounds + TOOL_SCHEMA_S * tool_count


def _p90(samples: list[float]) -> float:
    ordered = sorted(s for s in samples if math.isfinite(s) and s >= 0)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(0.9 * len(ordered)))
    return round(min(MAX_ESTIMATE, ordered[rank - 1]), 3)


def expected_from_history(history: list[float]) -> float | None:
    """The p90 of observed durations once there are MIN_HISTORY of them, else None (what
    GET /v1/agents shows: the estimate submit uses when it does not fall back on the text)."""
    return _p90(history) if len(history) >= MIN_HISTORY else None

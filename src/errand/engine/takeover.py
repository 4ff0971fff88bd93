"""What a takeover did, told once: the requests taken back from lost attempts (expired leases,
dead workers) logged by id, and those that failed because their attempts were spent counted in
`errand_requests_total` like any other terminal outcome.

Both takeovers (the requeue loop's `store.requeue_expired`, the dead-worker check's
`store.requeue_dead`) end here, so neither can forget the metric or the ids.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container, Sequence

from errand.logs import brief
from errand.metrics import REQUESTS, agent_label
from errand.models import Request, Status

__all__ = ["SHOWN_IDS", "report_takeover", "shown_ids"]

SHOWN_IDS = 20
"""Ids named in the summary line at most (a mass takeover still writes one line); the count is
always there, and every failed request has its own line."""

log = logging.getLogger("errand.worker")


def report_takeover(touched: Sequence[Request], why: str, agents: Container[str] | None = None) -> None:
    """Log and count the requests a takeover touched (`why`: "whose lease expired", "of dead
    workers"): one ERROR line per request it failed (attempts spent), one WARNING summary
    naming the ids and what became of them."""
    if not touched:
        return
    failed = [r for r in touched if r.status is Status.FAILED]
    for req in failed:
        REQUESTS.labels(req.kind, agent_label(req.agent, agents), Status.FAILED.value).inc()
        log.error(
            "failed %s after %d attempt(s): %s",
            req.id,
            req.failures,
            brief(req.error.message if req.error else "its attempts are spent"),
            extra={"request_id": req.id},
        )
    log.warning(
        "took over %d requests %s (%s): %s",
        len(touched),
        why,
        outcomes(touched),
        shown_ids([r.id for r in touched]),
        extra={"request_id": touched[0].id if len(touched) == 1 else None},
    )


def outcomes(touched: Sequence[Request]) -> str:
    """`2 to run again, 1 failed: attempts spent` (and any other end, e.g. `1 cancelled`)."""
    ended = Counter(r.status.value for r in touched if r.is_terminal)
    again = len(touched) - sum(ended.values())
    parts = [f"{again} to run again"] if again else []
    if failed := ended.pop(Status.FAILED.value, 0):
        parts.append(f"{failed} failed: attempts spent")
    parts += [f"{n} {status}" for status, n in sorted(ended.items())]
    return ", ".join(parts)


def shown_ids(ids: Sequence[str]) -> str:
    """The first SHOWN_IDS ids, then how many more."""
    shown = ", ".join(ids[:SHOWN_IDS])
    more = len(ids) - SHOWN_IDS
    return f"{shown} and {more} more" if more > 0 else shown

"""GET /metrics over real HTTP: every documented name after a full scenario, the queue gauges
against the API's own counts, the cache, and metrics.require_key."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from errand.api.scrape import is_loopback
from tests.support.server import ADMIN_KEY, CLIENT_KEY, Server, until, wait_for
from tests.support.sse_client import read_events
from tests.support.webhook_receiver import receiving

DOCUMENTED = {
    # name (as text_string_to_metric_families names the family): type
    "errand_queue_depth": "gauge",
    "errand_oldest_pending_seconds": "gauge",
    "errand_metrics_stale": "gauge",
    "errand_in_flight": "gauge",
    "errand_attempt_duration_seconds": "histogram",
    "errand_requests": "counter",
    "errand_retries": "counter",
    "errand_timeouts": "counter",
    "errand_webhook_deliveries": "counter",
    "errand_webhook_delivery_duration_seconds": "histogram",
    "errand_sse_streams": "gauge",
    "errand_submit_duration_seconds": "histogram",
    "errand_stray_attempt_threads": "gauge",
    "errand_process_info": "gauge",
}
"""The README's metrics table."""

AGENTS = [
    {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
    {"id": "fail", "handler": "tests.support.agents:fail"},
    {"id": "flaky", "handler": "tests.support.agents:flaky", "options": {"succeed_on": 2}},
    {"id": "slow", "handler": "tests.support.agents:slow", "options": {"seconds": 5}},
    {"id": "hold", "handler": "tests.support.agents:hold"},
]
SCENARIO = {
    "agents": AGENTS,
    "workflow": {"task_timeout": 0.5, "retry": {"max_attempts": 2, "initial_delay": 0, "jitter": 0}},
    "async": {"threshold_seconds": 0, "webhook_allow_hosts": ["127.0.0.1"]},
    "metrics": {"cache_seconds": 0},
}


def scrape(c: httpx.Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """family name -> {sorted labels (with the sample's suffix as __name__): value}."""
    r = c.get("/metrics")
    assert r.status_code == 200, r.text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            labels = tuple(sorted({**sample.labels, "__name__": sample.name}.items()))
            out[family.name][labels] = sample.value
    return out


def value(metrics: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float:
    """The sum of a family's samples whose labels include `labels` (suffix: `__name__`)."""
    total = 0.0
    for key, v in metrics.get(name, {}).items():
        have = dict(key)
        if all(have.get(k) == want for k, want in labels.items()):
            total += v
    return total


def submit(c: httpx.Client, agent: str, **body: object) -> str:
    r = c.post("/v1/chat", json={"message": "hi", "agent_id": agent, **body})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def test_every_documented_metric_after_a_full_scenario(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(**SCENARIO)
    c = server.client()
    before = scrape(c)
    with receiving() as receiver:
        done = submit(c, "echo", webhook_url=receiver.url)
        failed = submit(c, "fail")
        retried = submit(c, "flaky")
        timed_out = submit(c, "slow")
        assert wait_for(c, done)["status"] == "completed"
        assert wait_for(c, failed)["status"] == "failed"
        assert wait_for(c, retried)["status"] == "completed"
        assert wait_for(c, timed_out)["status"] == "failed"
        until(lambda: receiver.hits)
        streamed = read_events(c, f"/v1/requests/{done}/events")
        assert streamed.closed_by_server and streamed.types[-1] == "completed"
        after = scrape(c)
    missing = {name for name in DOCUMENTED if name not in after}
    assert not missing, f"documented but absent from /metrics: {sorted(missing)}"
    typed = {name: t for name, t in DOCUMENTED.items() if name in after}
    assert typed == DOCUMENTED

    def grew(name: str, by: float, **labels: str) -> None:
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert delta == by, f"{name}{labels} grew by {delta}, expected {by}"

    grew("errand_requests", 4, status="accepted", __name__="errand_requests_total")
    grew("errand_requests", 1, agent="echo", kind="chat", status="completed")
    grew("errand_requests", 1, agent="flaky", status="completed")
    grew("errand_requests", 1, agent="fail", status="failed")
    grew("errand_requests", 1, agent="slow", status="failed")
    grew("errand_retries", 1, agent="flaky", __name__="errand_retries_total")
    grew("errand_retries", 1, agent="slow", __name__="errand_retries_total")
    grew("errand_timeouts", 2, agent="slow", __name__="errand_timeouts_total")
    grew("errand_webhook_deliveries", 1, outcome="delivered", __name__="errand_webhook_deliveries_total")
    grew(
        "errand_webhook_delivery_duration_seconds",
        1,
        __name__="errand_webhook_delivery_duration_seconds_count",
    )
    grew("errand_submit_duration_seconds", 4, __name__="errand_submit_duration_seconds_count")
    grew(
        "errand_attempt_duration_seconds",
        1,
        agent="flaky",
        outcome="retried",
        __name__="errand_attempt_duration_seconds_count",
    )
    assert value(after, "errand_in_flight") == 0
    assert value(after, "errand_sse_streams") == 0
    assert value(after, "errand_metrics_stale") == 0
    assert value(after, "errand_queue_depth") == 0  # every request of the scenario ended
    assert value(after, "errand_queue_depth", status="pending", agent="echo") == 0  # shown at 0
    assert value(after, "errand_process_info", role="api") == 1


def listed(admin: httpx.Client, status: str) -> list[dict[str, object]]:
    page: list[dict[str, object]] = admin.get("/v1/requests", params={"status": status, "limit": 100}).json()[
        "requests"
    ]
    return page


def test_queue_gauges_match_the_api_counts(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server(**{**SCENARIO, "workers": {"concurrency": 2}})
    c, admin = server.client(), server.admin()
    gate = tmp_path / "release"
    started = time.time()
    try:
        for _ in range(3):
            submit(c, "hold", metadata={"release": str(gate)})
        for agent in ("echo", "fail"):  # no free slot: these wait, pending, behind the two held
            submit(c, agent)
        until(lambda: len(listed(admin, "processing")) == 2)
        m = scrape(c)
        pending, processing = listed(admin, "pending"), listed(admin, "processing")
        assert value(m, "errand_queue_depth", status="processing", agent="hold") == len(processing) == 2
        assert value(m, "errand_queue_depth", status="pending") == len(pending) == 3
        for agent in ("hold", "echo", "fail"):
            n = sum(1 for r in pending if r["agent"] == agent)
            assert value(m, "errand_queue_depth", status="pending", agent=agent) == n
        assert value(m, "errand_in_flight", agent="hold") == 2
        assert 0 < value(m, "errand_oldest_pending_seconds") <= time.time() - started
    finally:
        gate.touch()
    for r in processing + pending:
        wait_for(admin, str(r["request_id"]))
    m = scrape(c)
    assert value(m, "errand_queue_depth") == 0
    assert value(m, "errand_oldest_pending_seconds") == 0


def test_queue_gauges_are_cached(make_server: Callable[..., Server]) -> None:
    server = make_server(with_workers=False, metrics={"cache_seconds": 60})
    c = server.client()
    assert value(scrape(c), "errand_queue_depth", status="pending") == 0
    submit(c, "echo", mode="async")
    assert value(scrape(c), "errand_queue_depth", status="pending") == 0  # the cached read


def test_require_key(make_server: Callable[..., Server]) -> None:
    server = make_server(keys={"metrics": ["metrics-key-dddddddd"]}, metrics={"require_key": True})
    anonymous = server.client(key=None)
    r = anonymous.get("/metrics")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert server.client(CLIENT_KEY).get("/metrics").status_code == 401  # a client key is not enough
    assert server.client(ADMIN_KEY, admin=True).get("/metrics").status_code == 200
    bearer = {"Authorization": "Bearer metrics-key-dddddddd"}
    ok = httpx.get(f"{server.base}/metrics", headers=bearer, timeout=10)
    assert ok.status_code == 200 and "errand_queue_depth" in ok.text
    assert anonymous.get("/health").status_code == 200  # health stays open


def test_open_by_default_on_loopback(server: Server) -> None:
    assert server.client(key=None).get("/metrics").status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.com", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback

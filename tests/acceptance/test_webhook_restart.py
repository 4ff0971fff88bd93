"""SIGKILL `errand serve` between webhook retries: the delivery resumes after the restart.

The retry schedule lives in the database, not in the process: a receiver that fails the first
attempts, a server killed (no shutdown code at all) while a retry is ~2 s away, and a new
server on the same database must finish the delivery -- once, with a 2xx, under the same
`webhook-id` and the same signed bytes as the attempts before the kill.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from errand.webhooks import verify
from tests.support.procs import cli_secret, serving, write_formation
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.slow

KEY = "restart-client-key"
ADMIN = "restart-admin-key"


def formation(tmp: Path) -> Path:
    return write_formation(
        tmp,
        {
            "name": "hooks",
            "keys": {"client": [KEY], "admin": [ADMIN]},
            "storage": {"url": "sqlite:///hooks.db"},
            "async": {
                "webhook_allow_hosts": ["127.0.0.1"],
                "webhook_retries": 5,
                "webhook_initial_delay": 2,
                "webhook_max_delay": 2,
            },
            "workers": {"concurrency": 4, "lease_seconds": 5, "poll_interval": 0.2},
            "agents": [{"id": "echo", "handler": "errand.agents.builtin:echo"}],
        },
    )


def _deliveries(base: str, rid: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/v1/requests/{rid}/deliveries", headers={"X-Muxi-Client-Key": KEY}, timeout=5)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["deliveries"]
    return found


def test_sigkill_between_retries_then_the_delivery_completes(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    with receiving([500, 500]) as receiver:
        with serving(cfg, tmp_path / "serve1.log") as (base, proc):
            r = httpx.post(
                f"{base}/v1/chat",
                json={"message": "survive", "webhook_url": receiver.url},
                headers={"X-Muxi-Client-Key": KEY},
                timeout=10,
            )
            assert r.status_code == 202, r.text
            rid = r.json()["request_id"]
            [first] = receiver.wait_for(1, timeout=15)
            assert first.answered == 500
            # the failure is recorded and a retry scheduled ~2 s out (1.5-2 s with jitter)
            deadline = time.monotonic() + 5
            while not (d := _deliveries(base, rid)) or d[0]["state"] != "retrying":
                assert time.monotonic() < deadline, d
                time.sleep(0.02)
            proc.kill()
            killed_at = time.time()
        assert len(receiver.hits) == 1  # nothing was sent while the server was down

        with serving(cfg, tmp_path / "serve2.log") as (base, _):
            hits = receiver.wait_for(3, timeout=20)
            assert [h.answered for h in hits] == [500, 500, 200]
            assert all(h.at > killed_at for h in hits[1:])  # the new server made them
            assert len({h.webhook_id for h in hits}) == 1 and len({h.body for h in hits}) == 1
            secret = cli_secret(cfg)  # the generated secret outlived the SIGKILL: one for all hits
            assert all(verify(h.body, h.headers, secret) for h in hits)
            assert json.loads(hits[-1].body)["request_id"] == rid

            deadline = time.monotonic() + 5
            while (d := _deliveries(base, rid))[0]["state"] != "delivered":
                assert time.monotonic() < deadline, d
                time.sleep(0.05)
            [delivery] = d
            assert delivery["webhook_id"] == hits[0].webhook_id
            assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
            status = httpx.get(f"{base}/v1/requests/{rid}", headers={"X-Muxi-Client-Key": KEY}).json()
            assert status["delivery"]["state"] == "delivered" and status["delivery"]["attempts"] == 3
            time.sleep(2.5)  # past where another retry would fall: none comes
            assert sum(200 <= h.answered < 300 for h in receiver.hits) == 1
            assert len(receiver.hits) == 3

"""The default webhook signing secret: generated once per database, never the admin key.

Real `errand serve` processes on one SQLite file, a real receiver on 127.0.0.1, the secret read
back with the real `errand webhook-secret` command. Every signature is checked two independent
ways (errand.webhooks.verify and the Standard Webhooks library). Two servers started at the same
moment on a fresh database must sign with the one secret the CLI prints: each is made to send a
webhook while the other cannot (SIGSTOP / SIGKILL), so both processes' secrets are tested.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from errand.webhooks import verify
from tests.support.procs import ERRAND, Proc, cli_secret, free_port, wait_ready, write_formation
from tests.support.webhook_receiver import Hit, Receiver, receiving

pytestmark = pytest.mark.slow

KEY = "secret-client-key"
ADMIN = "secret-admin-key-0001"


def formation(tmp: Path, **async_: Any) -> Path:
    return write_formation(
        tmp,
        {
            "name": "signing",
            "keys": {"client": [KEY], "admin": [ADMIN]},
            "storage": {"url": "sqlite:///signing.db"},
            "async": {"webhook_allow_hosts": ["127.0.0.1"], **async_},
            # a long poll: a stopped process seldom sits inside a transaction (see the SIGSTOP)
            "workers": {"concurrency": 2, "lease_seconds": 5, "poll_interval": 5},
            "agents": [{"id": "echo", "handler": "errand.agents.builtin:echo"}],
        },
    )


def webhook_from(base: str, receiver: Receiver, message: str) -> Hit:
    before = len(receiver.hits)
    r = httpx.post(
        f"{base}/v1/chat",
        json={"message": message, "webhook_url": receiver.url},
        headers={"X-Muxi-Client-Key": KEY},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    hit = receiver.wait_for(before + 1, timeout=20)[-1]
    assert hit.body.count(r.json()["request_id"].encode()) >= 1
    return hit


def verifies(hit: Hit, secret: str) -> bool:
    """Both checks agree: errand's verify and the Standard Webhooks library."""
    ours = verify(hit.body, hit.headers, secret)
    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    try:
        Webhook(key).verify(hit.body, hit.headers, json_parse=False)
        standard = True
    except WebhookVerificationError:
        standard = False
    assert ours == standard, (ours, standard)
    return ours


def admin_view(base: str) -> dict[str, Any]:
    """GET /v1/admin/webhook-secret as the admin sees it, after checking that no one else can."""
    url = f"{base}/v1/admin/webhook-secret"
    for headers in ({"X-Muxi-Client-Key": KEY}, {}, {"X-Muxi-Admin-Key": KEY}):
        r = httpx.get(url, headers=headers, timeout=5)
        assert r.status_code == 401, r.text
        assert set(r.json()["error"]) == {"code", "message", "details"}
        assert "whsec_" not in r.text
    r = httpx.get(url, headers={"X-Muxi-Admin-Key": ADMIN}, timeout=5)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    found: dict[str, Any] = r.json()
    return found


def start(cfg: Path, log: Path) -> tuple[str, Proc]:
    port = free_port()
    args = ["serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    return f"http://127.0.0.1:{port}", Proc(args, log).start()


def test_two_servers_share_one_generated_secret_and_the_admin_key_verifies_nothing(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    (base_a, a), (base_b, b) = start(cfg, tmp_path / "a.log"), start(cfg, tmp_path / "b.log")
    try:
        wait_ready(base_a, a)
        wait_ready(base_b, b)
        with receiving() as receiver:
            assert b.p is not None
            os.kill(b.p.pid, signal.SIGSTOP)  # only A can claim, run and deliver now
            try:
                from_a = webhook_from(base_a, receiver, "signed by A")
            finally:
                a.kill()
                os.kill(b.p.pid, signal.SIGCONT)
            from_b = webhook_from(base_b, receiver, "signed by B")  # A is dead: B sent it
        assert not verifies(from_a, ADMIN) and not verifies(from_b, ADMIN)
        secret = cli_secret(cfg)
        assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        assert secret != ADMIN and cli_secret(cfg) == secret  # generated once, then kept
        assert verifies(from_a, secret) and verifies(from_b, secret)
        assert admin_view(base_b) == {"webhook_secret": secret, "source": "generated"}
    finally:
        a.kill()
        b.kill()
    for log in (a.log, b.log):
        assert secret not in log.read_text(errors="replace")  # never logged


def test_a_configured_secret_is_used_as_before(tmp_path: Path) -> None:
    """MUXI compatibility: a receiver that verifies with the admin key keeps working once the
    formation says `webhook_secret: "${ERRAND_ADMIN_KEY}"`; the CLI prints that secret."""
    cfg = formation(tmp_path, webhook_secret="${ERRAND_WEBHOOK_SECRET}")
    env = {"ERRAND_WEBHOOK_SECRET": ADMIN}
    port = free_port()
    args = ["serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    proc = Proc(args, tmp_path / "serve.log", env).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        with receiving() as receiver:
            hit = webhook_from(base, receiver, "configured")
        assert admin_view(base) == {"webhook_secret": ADMIN, "source": "config"}
    finally:
        proc.stop()
    assert verifies(hit, ADMIN)
    assert cli_secret(cfg, env) == ADMIN


def test_the_cli_never_migrates_and_creates_the_secret_before_any_server(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    done = subprocess.run(
        [ERRAND, "webhook-secret", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "migrations pending: run `errand migrate`" in done.stderr
    migrated = subprocess.run(
        [ERRAND, "migrate", "--config", str(cfg)], capture_output=True, timeout=30, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    secret = cli_secret(cfg)  # an operator can configure receivers before the first start
    assert secret.startswith("whsec_") and cli_secret(cfg) == secret

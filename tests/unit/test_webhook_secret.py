"""delivery/secret.py: the shape of a generated secret, and which secret a formation signs with."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from errand.clock import ManualClock
from errand.config import build_config
from errand.delivery.secret import SETTING, new_secret, signing_secret
from errand.errors import ConfigError
from errand.store.sqlite import SqliteStore
from errand.webhooks import sign, verify

KEYS = {"client": ["client-key-0001"], "admin": ["admin-key-0001"]}


def test_a_new_secret_is_a_standard_webhooks_secret_of_32_random_bytes() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50  # random each time
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    secret = made.pop()
    headers = sign(b'{"a":1}', secret, msg_id="dlv_1", timestamp=1_700_000_000)
    assert verify(b'{"a":1}', headers, secret, now=1_700_000_000)
    Webhook(secret)  # the library takes it as is (raises on a malformed whsec_)


async def test_the_configured_secret_wins_else_the_database_keeps_one(tmp_path: Path) -> None:
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'e.db'}", clock=ManualClock())
    try:
        generated = await signing_secret(build_config({"keys": KEYS}, env={}), store)
        assert generated.startswith("whsec_") and generated not in KEYS["admin"]
        assert await signing_secret(build_config({"keys": KEYS}, env={}), store) == generated
        assert await store.get_or_create_setting(SETTING, "other") == generated
        configured = build_config({"keys": KEYS, "async": {"webhook_secret": "admin-key-0001"}}, env={})
        assert await signing_secret(configured, store) == "admin-key-0001"  # MUXI receivers
    finally:
        await store.close()


def test_a_malformed_configured_secret_fails_at_load_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"async\.webhook_secret.*whsec_"):
        build_config({"keys": KEYS, "async": {"webhook_secret": "whsec_!!!"}}, env={})
    empty = build_config({"keys": KEYS, "async": {"webhook_secret": "${NOPE:-}"}}, env={})
    assert empty.async_.webhook_secret is None  # `${VAR:-}`: unset, so the generated secret signs

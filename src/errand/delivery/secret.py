"""The webhook signing secret: `async.webhook_secret` when set, else one generated per database.

Why not the admin key (MUXI's default, and errand's before): every receiver that verifies
signatures would then hold admin access to the API. The generated secret is a Standard Webhooks
`whsec_` secret (base64 of 32 random bytes), so `standardwebhooks` receivers take it as is. It is
created on first need and stored in the database (`Store.get_or_create_setting`), so every
`errand serve` / `errand worker` on that database signs with the same one; admins read it with
`errand webhook-secret`. It is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from contextlib import suppress
from typing import TYPE_CHECKING

from errand.backoff import Backoff
from errand.errors import StoreUnavailable
from errand.logs import mask_secret

if TYPE_CHECKING:
    from errand.config import Config
    from errand.store.base import Store

__all__ = ["SETTING", "new_secret", "signing_secret", "signing_secret_when_ready"]

log = logging.getLogger("errand.delivery")

SETTING = "webhook_secret"
"""The name the generated secret is stored under (Store.get_or_create_setting)."""
SECRET_BYTES = 32
_WAIT = Backoff(initial=0.2, maximum=5.0)
"""Between tries to read the secret from a database that is not migrated or not reachable yet."""


def new_secret() -> str:
    """A fresh `whsec_` secret: 32 bytes from the OS's CSPRNG, base64-encoded."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


async def signing_secret(config: Config, store: Store) -> str:
    """What webhooks are signed with: the configured secret, else this database's generated one
    (created now if it has none; processes racing here all get the one that won)."""
    if config.async_.webhook_secret:
        return config.async_.webhook_secret
    secret = await store.get_or_create_setting(SETTING, new_secret())
    mask_secret(secret)  # never in a log line, should one ever carry it
    return secret


async def signing_secret_when_ready(config: Config, store: Store, stop: asyncio.Event) -> str | None:
    """signing_secret, waiting (with backoff) while the database cannot give it yet -- not
    migrated (`serve --no-migrate` before `errand migrate`) or unreachable -- as the worker
    waits for its work; None if `stop` is set meanwhile."""
    waits = _WAIT.delays()
    while True:
        try:
            return await signing_secret(config, store)
        except StoreUnavailable as exc:
            delay = next(waits)
            log.warning(
                "webhook dispatcher: cannot read the signing secret yet (%s); retrying in %.1fs",
                exc.message,
                delay,
            )
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
            return None

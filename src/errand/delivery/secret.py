"""The webhook signing secret: `async.webhook_secret` when set, else one generated per database.

Why not the admin key (MUXI's default, and errand's before): every receiver that verifies
signatures would then hold admin access to the API. The generated secret is a Standard Webhooks
`whsec_` secret (base64 of 32 random bytes), so `standardwebhooks` receivers take it as is. It is
created on first need and stored in the database (`Store.get_or_create_setting`), so every
`errand serve` / `errand worker` on that database signs with the same one; admins read it with
`errand webhook-secret`. It is never logged.
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from errand.config import Config
    from errand.store.base import Store

__all__ = ["SETTING", "new_secret", "signing_secret"]

SETTING = "webhook_secret"
"""The name the generated secret is stored under (Store.get_or_create_setting)."""
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh `whsec_` secret: 32 bytes from the OS's CSPRNG, base64-encoded."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


async def signing_secret(config: Config, store: Store) -> str:
    """What webhooks are signed with: the configured secret, else this database's generated one
    (created now if it has none; processes racing here all get the one that won)."""
    if config.async_.webhook_secret:
        return config.async_.webhook_secret
    return await store.get_or_create_setting(SETTING, new_secret())

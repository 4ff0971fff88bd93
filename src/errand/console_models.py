"""Values of the console's reads and sessions: what the store returns for the dashboard.

A leaf beside `models`: plain frozen dataclasses, no behaviour but their shape.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "viewer")
"""Who may sign in to the console: an admin key, or a read-only viewer key."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """One console sign-in. The cookie's value is never stored: only its SHA-256 (`id_hash`),
    so a copy of the database signs nobody in."""

    id_hash: str
    key_id: str
    role: str
    csrf_token: str
    created_at: float
    expires_at: float

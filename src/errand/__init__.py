"""errand: a durable async-operations server for AI agents.

The SDK names (`Client`, `AsyncClient`, `Formation`) and the agent-facing errors are public here;
`import errand` stays light (no server, no database driver) so the SDK installs and imports fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from errand.errors import (
    Conflict,
    ErrandError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RequestExpired,
    ServiceUnavailable,
    TransientError,
    Unauthorized,
)
from errand.version import __version__

if TYPE_CHECKING:
    from errand.agents.base import RunContext
    from errand.client import AsyncClient, Client, Formation


__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "ErrandError",
    "Formation",
    "InvalidRequest",
    "NotFound",
    "PermanentError",
    "RequestExpired",
    "RunContext",
    "ServiceUnavailable",
    "TransientError",
    "Unauthorized",
    "__version__",
]

_LAZY = {
    "Client": "errand.client",
    "AsyncClient": "errand.client",
    "Formation": "errand.client",
    "RunContext": "errand.agents.base",
}


def __getattr__(name: str) -> Any:
    """Import SDK and agent names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'errand' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

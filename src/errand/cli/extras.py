"""Is the server installed? `pip install errand` is the SDK and the client commands only;
`errand serve`, `worker`, `migrate` and `webhook-secret` need `pip install 'errand[server]'`.

The list of server packages has one home, the `server` extra in pyproject.toml: it is read back
from the installed distribution's metadata, so a package added there is checked here too. Only
the standard library is used, since this runs in a client-only install.
"""

from __future__ import annotations

import re
from importlib import metadata

__all__ = ["SERVER_EXTRA", "missing_server_packages", "server_hint"]

SERVER_EXTRA = "server"
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']server["']""")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def server_requirements() -> list[str]:
    """Distribution names in the `server` extra of the installed errand (empty if errand runs
    from a tree that was never installed: then nothing can be checked)."""
    try:
        requires = metadata.requires("errand") or []
    except metadata.PackageNotFoundError:  # pragma: no cover - a tree that was never installed
        return []
    names = []
    for line in requires:
        spec, _, marker = line.partition(";")
        found = _NAME.match(spec.strip())
        if found and _EXTRA_MARKER.search(marker):
            names.append(found.group(0))
    return names


def missing_server_packages() -> list[str]:
    """The server extra's packages that are not installed, in pyproject order."""
    missing = []
    for name in server_requirements():
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def server_hint(command: str, missing: list[str]) -> str:
    """The one line a client-only install prints for a server command."""
    what = ", ".join(missing[:4]) + (", …" if len(missing) > 4 else "")
    return (
        f"`errand {command}` needs the server, which is not installed ({what} missing): "
        f"pip install 'errand[{SERVER_EXTRA}]'"
    )

"""The installed errand's version: one source for the CLI, /health, OpenAPI and the SDK's
User-Agent. A leaf (standard library only), so the client side reads it without the package
root, whose lazy names reach the agents."""

from __future__ import annotations

from importlib import metadata as _metadata

__all__ = ["__version__"]

try:
    __version__ = _metadata.version("errand")
    """The installed distribution's version (pyproject.toml)."""
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a tree that was never installed
    __version__ = "0.0.0+unknown"

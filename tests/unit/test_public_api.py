"""The public surface is pinned: nothing becomes public by accident."""

from __future__ import annotations

import subprocess
import sys

import errand


def test_all_is_pinned() -> None:
    assert sorted(errand.__all__) == [
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
    for name in errand.__all__:
        assert getattr(errand, name) is not None


def test_formation_is_client() -> None:
    assert errand.Formation is errand.Client


def test_sdk_import_stays_light() -> None:
    code = (
        "import sys, errand; errand.Client; "
        "heavy = [m for m in ('starlette', 'uvicorn', 'asyncpg', 'sqlite3', 'openai') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

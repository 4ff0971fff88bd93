"""Shared fixtures: a manual clock and a fresh SQLite database file per test.

Backend- and layer-specific fixtures live next to their tests (tests/integration/conftest.py ...).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from errand.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'errand.db'}"

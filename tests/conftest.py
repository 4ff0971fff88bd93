"""Shared fixtures: a manual clock and a fresh SQLite database file per test.

The fixtures of tests/support/ are registered here for every test: the API test server
(`server`, `make_server`: tests/support/server.py), PostgreSQL (`pg_url`, `pg_stores`,
`pg_fresh_url` ...: tests/support/pg_fixtures.py) and the fake OpenAI provider (`fake`,
`fake_server`: tests/support/fake_openai.py). Fixtures of one test module stay in it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from errand.clock import ManualClock

pytest_plugins = ["tests.support.server", "tests.support.pg_fixtures", "tests.support.fake_openai"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'errand.db'}"

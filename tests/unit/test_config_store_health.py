"""The settings of items 9 and 10: their documented defaults, where they go, what is refused."""

from __future__ import annotations

import pytest

from errand.config import build_config
from errand.engine.settings import WorkerSettings
from errand.errors import ConfigError

KEYS = {"keys": {"client": ["client-key-1"]}}


def test_defaults_reach_the_store_and_the_worker() -> None:
    cfg = build_config(KEYS)
    assert cfg.storage.sqlite_busy_timeout_seconds == 5.0
    assert cfg.async_.purge_interval == 300.0
    assert cfg.store_options["busy_timeout"] == 5.0
    assert cfg.store_options["result_ttl"] == 86400.0
    assert WorkerSettings.from_config(cfg).housekeeping_interval == 300.0


def test_durations_are_parsed_and_passed_on() -> None:
    cfg = build_config(
        {
            **KEYS,
            "storage": {"sqlite_busy_timeout_seconds": 1.5},
            "async": {"purge_interval": "2m", "result_ttl": "3s"},
        }
    )
    assert cfg.store_options["busy_timeout"] == 1.5
    assert cfg.store_options["result_ttl"] == 3.0
    assert WorkerSettings.from_config(cfg).housekeeping_interval == 120.0


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("async", "purge_interval", 0),
        ("async", "purge_interval", "soon"),
        ("storage", "sqlite_busy_timeout_seconds", -1),
    ],
)
def test_bad_values_name_their_key(section: str, key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        build_config({**KEYS, section: {key: value}})

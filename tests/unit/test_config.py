"""errand.config: formation.yaml -> Config (interpolation, rejected keys named by their dotted path,
durations, `enabled_if_env`, MUXI's task timeout) and the component settings built from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from errand.cli.banner import default_agent_line
from errand.config import build_config, interpolate, load_config
from errand.delivery.settings import DispatcherSettings
from errand.durations import parse_duration
from errand.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
KEYS = {"client": ["client-key-aaaaaaaa"]}
LLM_ENV = ["OPENAI_API_KEY", "OPENAI_BASE_URL"]
SECRET = "webhook-secret-for-tests"


def _config_error(data: Any, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        build_config(data, env=env or {})
    return str(info.value)


# -- interpolation ------------------------------------------------------------------------------


def test_env_references_are_replaced_in_every_string_nested_or_listed() -> None:
    data = {"a": ["x ${A} y", {"b": "${B:-fallback}"}], "n": 3, "c": "${A}${A}"}
    assert interpolate(data, {"A": "1"}) == {"a": ["x 1 y", {"b": "fallback"}], "n": 3, "c": "11"}


def test_a_set_variable_wins_over_the_default_and_an_empty_one_counts_as_unset() -> None:
    formation = {"keys": KEYS, "name": "${NAME:-errand}", "storage": {"url": "${DB:-sqlite:///x.db}"}}
    cfg = build_config(formation, env={"NAME": "lab", "DB": ""})
    assert (cfg.name, cfg.storage.url) == ("lab", "sqlite:///x.db")


def test_a_missing_variable_names_the_key_that_needs_it() -> None:
    assert _config_error({"keys": KEYS, "storage": {"url": "${DB}"}}) == (
        "storage.url: environment variable DB is not set"
    )
    assert _config_error({"keys": KEYS, "agents": [{"id": "a", "handler": "${H}"}]}) == (
        "agents[0].handler: environment variable H is not set"
    )


def test_an_optional_list_entry_left_empty_by_interpolation_is_dropped() -> None:
    cfg = build_config({"keys": KEYS, "agents": [{"id": "a", "handler": "m:f", "tools": ["${T:-}"]}]}, env={})
    assert cfg.agents[0].tools == []


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"keys": KEYS, "workers": {"concurency": 3}}, "workers.concurency"),  # a typo is not ignored
        ({"keys": KEYS, "async": {"webhook_retries": -1}}, "async.webhook_retries"),  # alias, not async_
        ({"keys": KEYS, "agents": [{"id": "a", "handler": "no_function"}]}, "agents[0]"),
        ({"keys": KEYS, "async": {"result_ttl": "soon"}}, "async.result_ttl"),
        ({"keys": KEYS, "async": {"result_ttl": True}}, "async.result_ttl"),
    ],
)
def test_bad_values_and_unknown_keys_are_rejected_by_their_dotted_key(data: Any, named: str) -> None:
    message = _config_error(data)
    assert message.startswith("invalid configuration: ") and f" {named}: " in message


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([1, 2], "the top level must be a mapping"),
        ({"keys": {}}, "at least one client or admin key is required"),
        ({"keys": {"client": ["short"]}}, "at least 8 characters"),
        ({"keys": KEYS, "agents": [{"id": "a", "handler": "m:f"}, {"id": "a", "handler": "m:g"}]}, "unique"),
        ({"keys": KEYS, "agents": [{"id": "a"}]}, "exactly one of `handler`"),
    ],
)
def test_formation_wide_rules(data: Any, says: str) -> None:
    assert says in _config_error(data)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (2.5, 2.5),
        ("90s", 90.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("250ms", 0.25),
    ],
)
def test_durations_take_numbers_or_units(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds
    assert build_config({"keys": KEYS, "async": {"result_ttl": value}}, env={}).async_.result_ttl == seconds


def test_muxi_overlord_task_timeout_applies_unless_workflow_sets_its_own() -> None:
    overlord = {"workflow": {"timeouts": {"task_timeout": "2m"}}}
    assert build_config({"keys": KEYS, "overlord": overlord}, env={}).workflow.task_timeout == 120.0
    own = {"keys": KEYS, "overlord": overlord, "workflow": {"task_timeout": 5}}
    assert build_config(own, env={}).workflow.task_timeout == 5.0


# -- paths and files ----------------------------------------------------------------------------


def test_a_relative_sqlite_path_is_found_in_the_formation_folder() -> None:
    assert build_config({"keys": KEYS}, env={}, base_dir="/srv/f").storage_url == "sqlite:////srv/f/errand.db"
    absolute = {"keys": KEYS, "storage": {"url": "sqlite:////abs/e.db"}}
    assert build_config(absolute, env={}, base_dir="/srv/f").storage_url == "sqlite:////abs/e.db"


def test_only_postgresql_gets_a_pool_size() -> None:
    assert "pool_size" not in build_config({"keys": KEYS}, env={}).store_options
    pg = {"keys": KEYS, "storage": {"url": "postgresql://db/errand", "pool_size": 4}}
    assert build_config(pg, env={}).store_options["pool_size"] == 4


def test_load_config_reads_the_file_and_its_folder_is_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "formation.yaml"
    path.write_text("name: lab\nkeys:\n  client: [client-key-aaaaaaaa]\n", encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.name, cfg.base_dir) == ("lab", str(tmp_path.resolve()))
    monkeypatch.setenv("ERRAND_CONFIG", str(path))
    assert load_config().name == "lab"  # no path: $ERRAND_CONFIG


def test_unreadable_or_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("keys: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


# -- enabled_if_env -----------------------------------------------------------------------------


def _demo(env: dict[str, str]) -> Any:
    data: dict[str, Any] = {
        "keys": KEYS,
        "agents": [
            {
                "id": "assistant",
                "enabled_if_env": LLM_ENV,
                "default": True,
                "model": {"name": "m", "api_key": "${OPENAI_API_KEY}"},  # unset: must not be read
            },
            {"id": "offline", "handler": "errand.agents.demo:run"},
        ],
    }
    return build_config(data, env=env)


def test_enabled_if_env_leaves_an_agent_out_until_a_variable_is_set() -> None:
    off = _demo({})
    assert [a.id for a in off.agents] == ["offline"] and off.default_agent == "offline"
    assert off.disabled_agents == ("assistant",)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        _demo({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})  # enabled: now its ${VAR} must resolve
    on = _demo({"OPENAI_API_KEY": "sk-x"})
    assert on.default_agent == "assistant" and on.disabled_agents == ()
    chosen = on.agent(None)
    assert chosen is not None and chosen.model is not None and chosen.model.api_key == "sk-x"
    with pytest.raises(ConfigError, match=r"agents\[0\]\.enabled_if_env"):
        build_config({"keys": KEYS, "agents": [{"id": "x", "handler": "m:f", "enabled_if_env": "A"}]}, env={})


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({}, "researcher: handler errand.agents.demo:run"),
        ({"OPENAI_API_KEY": "sk-x"}, "assistant: LLM agent, model gpt-4o-mini at https://api.openai.com/v1"),
        (
            {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_MODEL": "llama3"},
            "assistant: LLM agent, model llama3 at http://127.0.0.1:11434/v1",
        ),
    ],
)
def test_the_demo_formation_chooses_its_default_agent_by_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    for name in (*LLM_ENV, "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = load_config(REPO / "examples/demo/formation.yaml")
    assert default_agent_line(cfg) == line
    assert {"researcher", "echo"} <= {a.id for a in cfg.agents}


# -- settings built from the config --------------------------------------------------------------


def test_webhook_concurrency_is_configurable() -> None:
    base = {"keys": {"admin": ["admin-key-123"]}}
    assert DispatcherSettings.from_config(build_config(base, env={}), "s3cret").concurrency == 32
    cfg = build_config({**base, "async": {"webhook_concurrency": 128}}, env={})
    assert DispatcherSettings.from_config(cfg, "s3cret").concurrency == 128


def test_settings_from_config_sign_with_the_secret_given() -> None:
    keys = {"client": ["client-key-0001"], "admin": ["admin-key-0001"]}
    cfg = build_config(
        {"name": "lab", "keys": keys, "async": {"webhook_retries": 5, "webhook_allow_hosts": ["h"]}}, env={}
    )
    s = DispatcherSettings.from_config(cfg, "whsec_AAAA")
    assert (s.secret, s.formation_id, s.retries, s.timeout, s.allow_hosts) == (
        "whsec_AAAA",
        "lab",
        5,
        10.0,
        ("h",),
    )
    assert s.lease_seconds > s.timeout
    assert "whsec_AAAA" not in repr(s)
    with pytest.raises(ConfigError, match="signing secret"):
        DispatcherSettings.from_config(cfg, "")
    with pytest.raises(ConfigError, match="whsec_"):
        DispatcherSettings(formation_id="lab", secret="whsec_!!!")
    with pytest.raises(ConfigError, match="lease_seconds"):
        DispatcherSettings(formation_id="lab", secret=SECRET, timeout=10, lease_seconds=5)

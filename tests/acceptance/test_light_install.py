"""`pip install errand` is the SDK and the CLI client commands, without the server stack.

The package is built as a wheel and installed with its real base dependencies (no extras) into
a fresh virtualenv, from the indexes pip is configured with (its cache and any local index make
this work offline). In that virtualenv the SDK and `errand` talk to a real server started from
the test's own environment, `errand serve` names the extra to install, and none of the server's
packages is installed or imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from errand.version import __version__
from tests.support.sdk_server import CLIENT_KEY, REPO, LiveServer, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SERVER_MODULES = (
    "starlette",
    "uvicorn",
    "asyncpg",
    "openai",
    "jinja2",
    "prometheus_client",
    "swagger_ui",
    "pythonjsonlogger",
    "yaml",
    "orjson",
    "pydantic",
    "uvloop",
    "errand.config",
    "errand.api",
    "errand.store",
    "errand.engine",
    "errand.agents",
)
"""What the client side must never import (the `server` extra's packages by import name, and
errand's server modules); pydantic may be installed (typer needs it) but is never imported."""

PROBE = textwrap.dedent(
    """
    import json, sys
    import errand
    from errand.client import AsyncClient, Client
    from errand.cli import app  # every command registered, the server ones too

    url, key, forbidden = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    with Client(url, client_key=key, user_id="light") as c:
        st = c.chat("from the light sdk")
    loaded = sorted(m for m in forbidden if m in sys.modules)
    print(json.dumps({"text": st.result.text, "status": st.status.value, "loaded": loaded,
                      "version": errand.__version__}))
    """
)


@dataclass
class LightVenv:
    python: Path
    errand: Path
    wheel: Path

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )


def _pip(*args: str) -> None:
    """pip of this environment (it can install into another interpreter with --python)."""
    env = {**os.environ, "PIP_DEFAULT_TIMEOUT": "20", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> LightVenv:
    root = tmp_path_factory.mktemp("light")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=60
    )
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(root / "dist"), str(REPO))
    (wheel,) = (root / "dist").glob("errand-*.whl")
    python = root / "venv" / "bin" / "python"
    _pip("--python", str(python), "install", "--quiet", str(wheel))  # base dependencies, no extras
    return LightVenv(python, root / "venv" / "bin" / "errand", wheel)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("light-server")) as srv:
        yield srv


def _server_distributions() -> list[str]:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return [req.split(">")[0].split("[")[0].split("=")[0].strip() for req in extras["server"]]


def test_the_sdk_imports_and_answers_with_no_server_package_loaded(
    light: LightVenv, live: LiveServer
) -> None:
    done = light.run(light.python, "-c", PROBE, live.url, CLIENT_KEY, ",".join(SERVER_MODULES))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"text": "from the light sdk", "status": "completed", "loaded": [], "version": __version__}


def test_no_server_distribution_is_installed_but_what_the_base_needs(light: LightVenv) -> None:
    """Every package of the `server` extra is absent, except one a base dependency requires
    itself (typer requires pydantic); those are never imported (the test above)."""
    probe = textwrap.dedent(
        """
        import json, sys
        from importlib import metadata
        found = {}
        for name in sys.argv[1:]:
            try:
                found[name] = metadata.distribution(name).metadata["Name"]
            except metadata.PackageNotFoundError:
                pass
        needed = set()
        for dist in metadata.distributions():
            for req in dist.requires or []:
                if "extra ==" not in req:
                    needed.add(req.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower())
        print(json.dumps({"installed": found, "needed": sorted(needed)}))
        """
    )
    done = light.run(light.python, "-c", probe, *_server_distributions())
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    unexpected = {n for n in seen["installed"] if n.lower().replace("_", "-") not in seen["needed"]}
    assert unexpected == set(), f"server packages in a client-only install: {sorted(unexpected)}"
    for name in ("starlette", "uvicorn", "asyncpg", "openai", "jinja2", "PyYAML", "orjson"):
        assert name not in seen["installed"]
    for module in SERVER_MODULES:
        top = module.split(".")[0]
        if top == "errand" or top == "pydantic":
            continue
        gone = light.run(light.python, "-c", f"import {top}")
        assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr, module


def test_the_cli_prints_its_version_and_talks_to_the_server(light: LightVenv, live: LiveServer) -> None:
    version = light.run(light.errand, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"errand {__version__}")

    chat = light.run(light.errand, "chat", "hello light", "--url", live.url, "--key", CLIENT_KEY, "--json")
    assert chat.returncode == 0, chat.stderr
    doc = json.loads(chat.stdout)
    assert doc["status"] == "completed" and doc["result"]["text"] == "hello light"

    listed = light.run(
        light.errand, "requests", "--url", live.url, "--key", CLIENT_KEY, "--user", doc["user_id"], "--json"
    )
    assert listed.returncode == 0, listed.stderr
    assert doc["request_id"] in [r["request_id"] for r in json.loads(listed.stdout)["requests"]]


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "webhook-secret"])
def test_server_commands_name_the_extra_and_exit_2(light: LightVenv, tmp_path: Path, command: str) -> None:
    done = light.run(light.errand, command, "--config", str(tmp_path / "formation.yaml"))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"errand {command}" in lines[0] and "pip install 'errand[server]'" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_wheel_carries_the_mit_license(light: LightVenv) -> None:
    with zipfile.ZipFile(light.wheel) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith("/LICENSE")]
        text = wheel.read(name).decode()
        metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the errand authors" in text
    assert "License-Expression: MIT" in metadata or "License: MIT" in metadata


def test_init_works_without_the_server(light: LightVenv, tmp_path: Path) -> None:
    done = light.run(light.errand, "init", str(tmp_path / "f"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "f" / "formation.yaml").is_file()

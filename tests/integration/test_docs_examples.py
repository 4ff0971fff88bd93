"""Every runnable code block of README.md and docs/*.md runs, so the docs stay true.

python and sh blocks run as written (the README's `http://127.0.0.1:8001` and `req_…` replaced by
a real server's URL and a real request id) against a real `errand serve` of the demo formation
(examples/demo/, offline agents, its default keys); yaml blocks are loaded with the config model
(a fragment on top of a minimal formation); `handler` blocks become the agents of a second real
server and each must end its request as marked. Blocks that cannot run here carry
`<!-- docs: no-run (reason) -->` (tests/support/doc_blocks.py); they are counted, and every
other runnable block is one case below. systemd unit blocks are checked by
`systemd-analyze verify`, the nginx block by `nginx -t`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from errand.config import build_config
from tests.support.doc_blocks import REPO, RUNNABLE, Block, all_blocks, doc_files, markers_without_block
from tests.support.procs import ERRAND, serving, write_formation

pytestmark = pytest.mark.timeout(900)

BLOCKS = all_blocks()
README_URL = "http://127.0.0.1:8001"
CLIENT, ADMIN = "demo-client-key", "demo-admin-key"
TERMINAL = {"completed", "failed", "cancelled"}


def _cases(kind: str) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.kind == kind]


class _AnyEnv(dict[str, str]):
    """An environment in which every `${VAR}` is set (yaml blocks name the operator's own)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "docs-example-value"

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return "docs-example-value"


@dataclass
class Demo:
    """The demo server: its URL, a finished request's id, the folder and environment blocks run in."""

    base: str
    rid: str
    cwd: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo formation served by `errand serve` in a scratch folder (its own SQLite file),
    the environment blocks run with, and one finished request's id for `req_…`."""
    work = tmp_path_factory.mktemp("docs-demo")
    shutil.copytree(REPO / "examples" / "demo", work, dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ERRAND_"))}
    env |= {"ERRAND_STORAGE_URL": f"sqlite:///{work / 'errand-demo.db'}", "NO_COLOR": "1"}
    with serving(work / "formation.yaml", work / "serve.log", env=env) as (base, _proc):
        hdr = {"X-Muxi-Client-Key": CLIENT}
        sent = httpx.post(f"{base}/v1/chat", headers=hdr, json={"message": "hi", "agent_id": "echo"})
        rid = sent.json()["request_id"]
        httpx.get(f"{base}/v1/requests/{rid}?wait=10", headers=hdr, timeout=20)
        bin_dir = str(Path(ERRAND).parent)
        run_env = env | {
            "PATH": f"{bin_dir}:{env.get('PATH', '')}",
            "ERRAND_URL": base,
            "ERRAND_CLIENT_KEY": CLIENT,
            "ERRAND_ADMIN_KEY": ADMIN,
            "ADMIN_KEY": ADMIN,
            "CLIENT_KEY": CLIENT,
            "PYTHONPATH": str(work),
        }
        yield Demo(base, rid, work, run_env)


def _substitute(text: str, demo: Demo) -> str:
    text = text.replace(README_URL, demo.base).replace("req_…", demo.rid)
    return text.replace(".venv/bin/errand", ERRAND)


def _run(args: list[str], demo: Demo, block: Block) -> str:
    done = subprocess.run(
        args, cwd=demo.cwd, env=demo.env, capture_output=True, text=True, timeout=180, check=False
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{block.id} exited {done.returncode}:\n{block.text}\n---\n{out[-4000:]}"
    if block.expect is not None:
        assert block.expect in out, f"{block.id}: expected {block.expect!r} in:\n{out[-4000:]}"
    return out


@pytest.mark.parametrize("block", _cases("sh"))
def test_shell_block_runs(block: Block, demo: Demo) -> None:
    for tool in ("curl", "sqlite3"):
        if re.search(rf"^\s*{tool}\b", block.text, re.M) and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    _run(["bash", "-e", "-o", "pipefail", "-c", _substitute(block.text, demo)], demo, block)


@pytest.mark.parametrize("block", _cases("python"))
def test_python_block_runs(block: Block, demo: Demo) -> None:
    _run([sys.executable, "-c", _substitute(block.text, demo)], demo, block)


@pytest.mark.parametrize("block", _cases("yaml"))
def test_yaml_block_is_a_valid_formation(block: Block) -> None:
    data = yaml.safe_load(block.text)
    assert isinstance(data, dict), f"{block.id}: not a mapping"
    formation: dict[str, Any] = {
        "keys": {"client": ["docs-client-key"]},
        "agents": [{"id": "echo", "handler": "errand.agents.builtin:echo"}],
    }
    formation.update(data)
    build_config(formation, env=_AnyEnv())


@pytest.mark.parametrize("block", _cases("systemd"))
def test_systemd_unit_verifies(block: Block, tmp_path: Path) -> None:
    """`systemd-analyze verify` parses the unit and checks its ExecStart (errand's path here)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    unit = tmp_path / block.unit_name
    unit.write_text(re.sub(r"/\S*/\.venv/bin/errand", ERRAND, block.text))
    args = [analyze, "verify", str(unit)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and block.unit_name not in done.stderr, f"{block.id}:\n{done.stderr}"


@pytest.mark.parametrize("block", _cases("nginx"))
def test_nginx_config_passes_nginx_t(block: Block, tmp_path: Path) -> None:
    """`nginx -t` on the block inside a minimal http {} (its certificate paths made real)."""
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=errand.test",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", block.text)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    args = [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "[warn]" not in done.stderr, f"{block.id}:\n{done.stderr}"


@pytest.fixture(scope="module")
def agents_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `errand serve` whose agents are the docs' handler blocks, one module each."""
    work = tmp_path_factory.mktemp("docs-agents")
    agents = []
    for n, block in enumerate(b for b in BLOCKS if b.kind == "handler"):
        (work / f"docs_block_{n}.py").write_text(block.text)
        agents.append({"id": f"block-{n}", "handler": f"docs_block_{n}:{block.handler[0]}"})
    data = {
        "name": "docs",
        "keys": {"client": [CLIENT], "admin": [ADMIN]},
        "storage": {"url": f"sqlite:///{work / 'docs.db'}", "sqlite_synchronous": "normal"},
        "workflow": {"task_timeout": 30, "retry": {"max_attempts": 3, "initial_delay": 0.1}},
        "agents": agents or [{"id": "echo", "handler": "errand.agents.builtin:echo"}],
    }
    with serving(write_formation(work, data), work / "serve.log") as (base, _proc):
        yield base


@pytest.mark.parametrize("block", _cases("handler"))
def test_handler_block_serves_a_request(block: Block, agents_server: str) -> None:
    n = [b for b in BLOCKS if b.kind == "handler"].index(block)
    hdr = {"X-Muxi-Client-Key": CLIENT}
    body = {"message": "docs example", "agent_id": f"block-{n}", "async": True, "metadata": {"order": "o-1"}}
    rid = httpx.post(f"{agents_server}/v1/chat", headers=hdr, json=body).json()["request_id"]
    deadline = time.monotonic() + 60
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = httpx.get(f"{agents_server}/v1/requests/{rid}?wait=10", headers=hdr, timeout=20).json()
        if doc.get("status") in TERMINAL:
            break
    assert doc.get("status") == block.handler[1], f"{block.id}: {doc}"


def test_every_block_is_run_or_marked() -> None:
    """Each runnable block is one of the cases above, or says why it cannot run here."""
    for path in doc_files():
        assert markers_without_block(path) == [], f"{path}: a docs marker with no code block after it"
    no_run = [b for b in BLOCKS if b.kind == "no-run"]
    for b in no_run:
        assert b.no_run_reason, f"{b.id}: `no-run` needs a reason: <!-- docs: no-run (why) -->"
    ran = [b for b in BLOCKS if b.kind in ("sh", "python", "yaml", "handler", "systemd", "nginx")]
    unmarked_runnable = [b for b in BLOCKS if b.lang in RUNNABLE and b.kind not in ("no-run", "handler")]
    assert set(unmarked_runnable) <= set(ran)
    assert (REPO / "docs" / "agents.md") in doc_files() and len(ran) >= 20
    shown = len(BLOCKS) - len(ran) - len(no_run)
    print(f"docs blocks: {len(ran)} run, {len(no_run)} marked no-run, {shown} shown")

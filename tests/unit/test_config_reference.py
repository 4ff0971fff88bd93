"""docs/configuration.md is generated from the config model and must match it (config_reference.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from errand.config import AsyncConfig, Config
from errand.config_reference import COMMAND, _attribute_docs, _sections, main, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_reference_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), f"docs/configuration.md is stale: run `{COMMAND}`"


def test_every_section_and_key_is_listed() -> None:
    page = render()
    paths = [path for path, _ in _sections(Config, "")]
    wanted = ("keys", "storage", "async", "workflow.retry", "agents[]", "agents[].model", "router", "limits")
    for path in wanted:
        assert path in paths
    for path, model in _sections(Config, ""):
        heading = f"## `{path}`" if path else "## Top level"
        assert heading in page
        block = page.split(heading, 1)[1].split("\n## ", 1)[0]
        for name, field in model.model_fields.items():
            if model is Config and name == "base_dir":
                continue
            assert f"| `{field.alias or name}` |" in block, (path, name)


def test_rows_carry_type_default_and_the_field_docstring() -> None:
    page = render()
    assert _attribute_docs(AsyncConfig)["webhook_secret"].startswith("What webhooks are signed with.")
    row = next(line for line in page.splitlines() if line.startswith("| `sqlite_synchronous` |"))
    assert "`full` \\| `normal`" in row and '`"full"`' in row and "fsynced" in row
    row = next(line for line in page.splitlines() if line.startswith("| `webhook_timeout` |"))
    assert "| duration | `10.0` |" in row
    row = next(line for line in page.splitlines() if line.startswith("| `concurrency` |"))
    assert "(≥ 1, ≤ 100000)" in row


def test_check_fails_on_a_stale_file_naming_the_command(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(render().replace("fsynced", "synced"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "errand.config_reference", "--check", str(stale)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and COMMAND in done.stderr
    assert main(["--write", str(stale)]) == 0 and main(["--check", str(stale)]) == 0


def test_nested_models_are_sections_not_rows_of_json() -> None:
    for _, model in _sections(Config, ""):
        assert issubclass(model, BaseModel)
    assert "| `retry` | section \\| null | unset |" in render()

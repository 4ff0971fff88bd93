"""The browser tests' skip rule: without Chromium they skip saying why, unless
ERRAND_REQUIRE_BROWSER=1, when they fail (so CI never passes by skipping them).

Runs pytest on tests/browser in a subprocess with ERRAND_CHROMIUM pointing at nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import REPO


def _run(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ERRAND_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("ERRAND_REQUIRE_BROWSER", None)
    if require:
        env["ERRAND_REQUIRE_BROWSER"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/browser",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-k",
            "sign_in",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_without_chromium_the_browser_tests_skip_saying_why(tmp_path: Path) -> None:
    done = _run(tmp_path, require=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert f"browser tests skipped: no Chromium at {tmp_path / 'no-chromium'}" in done.stdout


@pytest.mark.slow
def test_with_errand_require_browser_they_fail_instead(tmp_path: Path) -> None:
    done = _run(tmp_path, require=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ERRAND_REQUIRE_BROWSER=1 but no Chromium at" in done.stdout

"""The fenced code blocks of README.md and docs/*.md, and how the docs test treats each one.

A block is *runnable* when its language is python, sh/bash or yaml. An HTML comment on the
line before a block says how to treat it instead:

    <!-- docs: no-run (why: needs systemd) -->   never run; the reason is required
    <!-- docs: handler FUNC [STATUS] -->         a Python agent module: served by a real
                                                 `errand serve`, FUNC as an agent, and the
                                                 request must end in STATUS (default completed)
    <!-- docs: expect TEXT -->                   run it; its output must contain TEXT
    <!-- docs: systemd NAME.service -->          a unit file: `systemd-analyze verify` as NAME
    <!-- docs: nginx -->                         a server block: `nginx -t` inside an http {}

Other languages (json, markdown, plain output) are illustrations: shown, never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNABLE = frozenset({"python", "sh", "bash", "yaml"})
_FENCE = re.compile(r"^(```+)\s*([A-Za-z0-9_+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*docs:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and its marker (if any)."""

    path: Path
    line: int
    lang: str
    text: str
    marker: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def kind(self) -> str:
        """no-run, handler, systemd, nginx, or the language family (python, sh, yaml), or illustration."""
        if self.marker is not None:
            head = self.marker.split(None, 1)[0]
            if head in ("no-run", "handler", "systemd", "nginx"):
                return head
        if self.lang in ("sh", "bash"):
            return "sh"
        return self.lang if self.lang in RUNNABLE else "illustration"

    @property
    def expect(self) -> str | None:
        if self.marker is not None and self.marker.startswith("expect "):
            return self.marker[len("expect ") :]
        return None

    @property
    def no_run_reason(self) -> str | None:
        match = re.match(r"no-run\s*\((.+)\)$", self.marker or "")
        return match.group(1).strip() if match else None

    @property
    def unit_name(self) -> str:
        """The file name a `systemd` block is verified under (an instance of a template unit)."""
        return (self.marker or "").split()[1]

    @property
    def handler(self) -> tuple[str, str]:
        """(function, expected final status) of a `handler` block."""
        parts = (self.marker or "").split()
        return parts[1], parts[2] if len(parts) > 2 else "completed"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of one Markdown file, with the marker on the line before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, lang = match.group(1), match.group(2).lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        if end is None:
            raise ValueError(f"{path}:{i + 1}: unclosed code block")
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(prev.strip())
        text = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(path, i + 1, lang, text, marker.group(1) if marker else None))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [b for p in doc_files() for b in blocks(p)]


def markers_without_block(path: Path) -> list[int]:
    """Lines of `docs:` markers that no code block follows (a typo would silently skip nothing)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = {b.line for b in blocks(path)}
    bad = []
    for i, line in enumerate(lines):
        if _MARKER.match(line.strip()):
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if nxt is None or nxt + 1 not in starts:
                bad.append(i + 1)
    return bad

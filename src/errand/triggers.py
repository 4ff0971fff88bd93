"""Triggers: message templates in `triggers/NAME.md`, rendered with `${{ data.path.to.field }}`.

A trigger turns an incoming JSON payload (a GitHub or Stripe webhook, a cron job's POST) into
a chat message. The file may start with YAML front matter between `---` lines::

    ---
    description: Triage a new GitHub issue
    agent: triager
    use_async: true
    webhook_url: https://hooks.example.com/triage
    ---
    New issue #${{ data.issue.number }} in ${{ data.repository.full_name }}:
    ${{ data.issue.title }}

Rendering is deliberately narrow. Only `${{ ... }}` is template syntax: Jinja's `{% %}` and
`{# #}` are switched off, so ordinary Markdown (and the `{{ }}` of other tools) passes through
untouched. Placeholders read *data*: `data.a.b` looks up keys, `data.items.0` indexes lists, and
no Python attribute or method is reachable (the environment is Jinja's sandbox on top of that).
Values are written as text: strings as is, null as nothing, everything else as JSON (`true`,
`2.5`, `{"k": 1}`), never as a Python repr. A missing field is a client error naming its path.
Payload strings are data, never templates: they are not rendered again.

`schedule:` in the front matter fires the trigger on a timetable (see `schedules.spec`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Template, TemplateError, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from errand.errors import ConfigError, InvalidRequest, ResourceNotFound

__all__ = ["Trigger", "find_trigger", "load_trigger", "load_triggers", "parse_trigger"]

NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FRONT_MATTER_KEYS = {"agent", "webhook_url", "webhook", "use_async", "description", "schedule"}
"""`webhook` is MUXI's name for `webhook_url`, accepted so MUXI trigger files load unchanged."""
_OPTIONAL_FILTERS = {"default", "d"}
_OPTIONAL_TESTS = {"defined", "undefined", "none"}

PathPart = str | int


class _Missing(StrictUndefined):
    """A placeholder that is not in the data: any use of it fails, naming the field."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        return f"missing template field: {self._undefined_name}"


def _step(value: Any, key: Any) -> tuple[bool, Any]:
    """One path step over JSON data: a key of a mapping or an index of a list; nothing else."""
    if isinstance(value, Mapping):
        return (True, value[key]) if key in value else (False, None)
    if isinstance(value, list) and not isinstance(key, bool):
        index = int(key) if isinstance(key, str) and key.isdigit() else key
        if isinstance(index, int) and -len(value) <= index < len(value):
            return True, value[index]
    return False, None


class _DataEnvironment(SandboxedEnvironment):
    """The sandbox, narrowed further: `.x` and `[x]` read JSON data only, never Python attributes.

    Looking keys up before attributes matters beyond safety: `data.items` in a payload with an
    `items` key must give the data, not `dict.items`.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._lookup(obj, argument)

    def _lookup(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, Undefined):
            return obj  # keep the first missing name
        found, value = _step(obj, key)
        return value if found else self.undefined(obj=obj, name=str(key))


def _finalize(value: Any) -> Any:
    """Text for a placeholder: strings as is, null as nothing, other values as JSON (never a
    Python repr). A null renders empty because payloads use it for "not set" (GitHub's issue
    body); a *missing* field is still an error.

    A filter result that is an iterator (`map`, `select`) is written as a JSON list; anything
    else that is not JSON (e.g. Jinja's `self`) is an error rather than a leaked repr."""
    if isinstance(value, str | Undefined):
        return value
    if value is None:
        return ""
    if isinstance(value, Iterator):
        value = list(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)


def _environment() -> _DataEnvironment:
    env = _DataEnvironment(
        variable_start_string="${{",
        variable_end_string="}}",
        # Block and comment syntax are switched off by giving them delimiters no text contains.
        block_start_string="\x00{%",
        block_end_string="%}\x00",
        comment_start_string="\x00{#",
        comment_end_string="#}\x00",
        undefined=_Missing,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.globals.clear()  # no range(), dict(), namespace()...: templates substitute, they don't compute
    env.filters.pop("attr", None)  # the one filter that reaches Python attributes by name
    return env


_ENV = _environment()


def _show(parts: Sequence[PathPart]) -> str:
    """`data.issue.title`, `data.labels[0]`, `data["x-y"]`: how a path is named in messages."""
    out = "data"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(p):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
    return out


def _chain(node: nodes.Node) -> list[PathPart] | None:
    """The path of a `data.a["b"].0` expression (constant steps only), else None."""
    parts: list[PathPart] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if not isinstance(node.arg.value, str | int) or isinstance(node.arg.value, bool):
                return None
            parts.append(node.arg.value)
        elif isinstance(node, nodes.Name):
            return parts[::-1] if node.name == "data" else None
        else:
            return None
        node = node.node


def _makes_optional(node: nodes.Node) -> bool:
    """Subtrees whose fields may be absent: `x | default(...)`, `x is defined`, `a if c else b`."""
    if isinstance(node, nodes.Filter):
        return node.name in _OPTIONAL_FILTERS
    if isinstance(node, nodes.Test):
        return node.name in _OPTIONAL_TESTS
    return isinstance(node, nodes.CondExpr)


def _placeholders(node: nodes.Node, optional: bool = False) -> Iterator[tuple[list[PathPart], bool]]:
    """Every constant data path in the template, with whether it may be missing."""
    path = _chain(node)
    if path is not None:
        if path:
            yield path, optional
        return
    inner = optional or _makes_optional(node)
    for child in node.iter_child_nodes():
        yield from _placeholders(child, inner)


def _resolves(data: Any, parts: Sequence[PathPart]) -> bool:
    value = data
    for p in parts:
        found, value = _step(value, p)
        if not found:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger: its template, the front-matter settings and the fields it reads."""

    name: str
    source: str
    description: str = ""
    agent: str | None = None
    webhook_url: str | None = None
    use_async: bool | None = None
    schedule: Mapping[str, Any] | None = None
    """The front matter's `schedule:` as written (checked by `schedules.spec` at startup)."""
    fields: tuple[str, ...] = ()
    """Placeholders found in the template, as paths under `data` (`issue.title`), in order."""
    _required: tuple[tuple[PathPart, ...], ...] = field(default=(), repr=False, compare=False)
    _template: Template | None = field(default=None, repr=False, compare=False)

    def render(self, data: Any) -> str:
        """The message for this payload. InvalidRequest names the first missing field."""
        for parts in self._required:
            if not _resolves(data, parts):
                raise InvalidRequest(
                    f"missing template field: {_show(parts)}", details={"trigger": self.name}
                )
        try:
            template = self._template or _ENV.from_string(self.source)
            text = template.render(data=data)
        except UndefinedError as exc:
            raise InvalidRequest(str(exc), details={"trigger": self.name}) from None
        except SecurityError:
            raise InvalidRequest("trigger template used a forbidden operation") from None
        except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidRequest(
                f"trigger {self.name!r} could not be rendered with this data: {exc}"
            ) from None
        return text.strip()

    def public(self) -> dict[str, Any]:
        """What GET /v1/triggers shows: no file path, no template source, no webhook URL."""
        return {
            "name": self.name,
            "description": self.description,
            "fields": list(self.fields),
            "agent": self.agent,
            "use_async": self.use_async,
        }


def _split_front_matter(text: str, label: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, template body, lines before the body): errors name lines of the file."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return {}, text.lstrip("\ufeff"), 0
    for i, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            try:
                meta = yaml.safe_load("".join(lines[1:i]))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f", line {mark.line + 2}" if mark is not None else ""  # after the opening ---
                raise ConfigError(f"{label}{where}: front matter is not valid YAML: {exc}") from None
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                raise ConfigError(f"{label}: front matter must be a mapping of keys")
            return meta, "".join(lines[i + 1 :]), i + 1
    raise ConfigError(f"{label}: front matter starts with '---' but has no closing '---' line")


def _settings(meta: dict[str, Any], label: str) -> dict[str, Any]:
    """Validated front-matter values; unknown keys and wrong types name the file and key."""
    for key in meta:
        if key not in _FRONT_MATTER_KEYS:
            known = ", ".join(sorted(_FRONT_MATTER_KEYS - {"webhook"}))
            raise ConfigError(f"{label}: unknown front matter key {key!r} (known: {known})")
    if "webhook" in meta and "webhook_url" in meta:
        raise ConfigError(f"{label}: give either 'webhook_url' or 'webhook', not both")
    out: dict[str, Any] = {
        "description": meta.get("description") or "",
        "agent": meta.get("agent"),
        "webhook_url": meta.get("webhook_url", meta.get("webhook")),
        "use_async": meta.get("use_async"),
        "schedule": meta.get("schedule"),
    }
    checks = (
        ("description", str), ("agent", str), ("webhook_url", str), ("use_async", bool), ("schedule", dict)
    )  # fmt: skip
    for key, kind in checks:
        if out[key] is not None and not isinstance(out[key], kind):
            raise ConfigError(f"{label}: front matter key {key!r} must be a {kind.__name__}")
    return out


def parse_trigger(name: str, text: str, *, label: str | None = None) -> Trigger:
    """A Trigger from a file's text. ConfigError (naming `label`) for bad front matter or syntax."""
    label = label or f"triggers/{name}.md"
    if not NAME.match(name):
        raise ConfigError(f"{label}: trigger names may use only letters, digits, '_' and '-'")
    meta, source, offset = _split_front_matter(text, label)
    settings = _settings(meta, label)
    try:
        ast = _ENV.parse(source)
        template = _ENV.from_string(source)  # compiled now: an unknown filter fails at load, not on use
    except TemplateSyntaxError as exc:
        line = exc.lineno + offset  # a line of the file, front matter included
        raise ConfigError(f"{label}, line {line}: template error: {exc.message}") from None
    except TemplateError as exc:
        raise ConfigError(f"{label}: template error: {exc}") from None
    found = list(_placeholders(ast))
    fields = tuple(dict.fromkeys(_show(p).removeprefix("data").lstrip(".") for p, _ in found))
    required = tuple(dict.fromkeys(tuple(p) for p, optional in found if not optional))
    return Trigger(
        name=name, source=source, fields=fields, _required=required, _template=template, **settings
    )


def load_trigger(path: Path) -> Trigger:
    """One trigger file (the name is the file name without `.md`)."""
    label = f"triggers/{path.name}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read trigger file ({exc})") from None
    return parse_trigger(path.stem, text, label=label)


def load_triggers(base_dir: str | Path) -> dict[str, Trigger]:
    """Every `triggers/*.md` of the formation folder, by name (an absent folder gives none)."""
    folder = Path(base_dir) / "triggers"
    if not folder.is_dir():
        return {}
    return {t.name: t for t in (load_trigger(p) for p in sorted(folder.glob("*.md")) if p.is_file())}


def find_trigger(triggers: Mapping[str, Trigger], name: str) -> Trigger:
    """The named trigger, or ResourceNotFound that names it (never a file path)."""
    trigger = triggers.get(name)
    if trigger is None:
        shown = name if len(name) <= 100 else name[:100] + "..."
        valid = sorted(triggers)
        raise ResourceNotFound(
            f"Trigger {shown!r} not found; the triggers are: {', '.join(valid) or 'none'}",
            details={"trigger": shown, "valid": valid},
        )
    return trigger

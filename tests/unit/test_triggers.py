"""errand.triggers: loading trigger files, rendering ${{ data.x }}, and what templates cannot do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from errand.errors import ConfigError, InvalidRequest, ResourceNotFound
from errand.triggers import Trigger, find_trigger, load_triggers, parse_trigger

GITHUB_ISSUE = """---
description: Triage a new GitHub issue
agent: triager
use_async: true
webhook_url: https://hooks.example.com/triage
---
New issue #${{ data.issue.number }} in ${{ data.repository.full_name }} by ${{ data.issue.user.login }}:

## ${{ data.issue.title }}

${{ data.issue.body }}

Labels: ${{ data.issue.labels | map(attribute="name") | join(", ") }}
First label: ${{ data.issue.labels.0.name }}
"""

PAYLOAD: dict[str, Any] = {
    "action": "opened",
    "issue": {
        "number": 42,
        "title": "Crash on Café ☕ input",
        "body": "Steps:\n1. `{{ x }}` {% raw %}\n2. ${HOME}",
        "user": {"login": "octocat"},
        "labels": [{"name": "bug"}, {"name": "p1"}],
    },
    "repository": {"full_name": "octo/errand"},
}


def write(base: Path, name: str, text: str) -> Path:
    folder = base / "triggers"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_and_github_style_rendering(tmp_path: Path) -> None:
    write(tmp_path, "github-issue", GITHUB_ISSUE)
    triggers = load_triggers(tmp_path)
    t = triggers["github-issue"]
    assert (t.agent, t.use_async, t.description) == ("triager", True, "Triage a new GitHub issue")
    assert t.webhook_url == "https://hooks.example.com/triage"
    text = t.render(PAYLOAD)
    assert text.startswith("New issue #42 in octo/errand by octocat:")
    assert "## Crash on Café ☕ input" in text
    assert "Labels: bug, p1" in text
    assert "First label: bug" in text
    # payload strings are data: their braces are not rendered again
    assert "`{{ x }}` {% raw %}" in text and "${HOME}" in text


def test_fields_are_the_placeholders_in_order(tmp_path: Path) -> None:
    write(tmp_path, "github-issue", GITHUB_ISSUE)
    t = load_triggers(tmp_path)["github-issue"]
    assert t.fields == (
        "issue.number",
        "repository.full_name",
        "issue.user.login",
        "issue.title",
        "issue.body",
        "issue.labels",
        "issue.labels[0].name",
    )


def test_missing_field_names_the_full_path() -> None:
    t = parse_trigger("t", "Title: ${{ data.issue.title }}")
    with pytest.raises(InvalidRequest, match=r"^missing template field: data\.issue\.title$"):
        t.render({"issue": {"number": 1}})
    with pytest.raises(InvalidRequest, match=r"missing template field: data\.issue\.title"):
        t.render({})
    with pytest.raises(InvalidRequest, match=r"missing template field: data\.issue\.title"):
        t.render({"issue": "not an object"})
    t = parse_trigger("t", "${{ data.labels[3] }} ${{ data['x-y'] }}")
    with pytest.raises(InvalidRequest, match=r"missing template field: data\.labels\[3\]"):
        t.render({"labels": [1], "x-y": 1})
    with pytest.raises(InvalidRequest, match=r'missing template field: data\["x-y"\]'):
        t.render({"labels": [1, 2, 3, 4]})


def test_optional_fields_with_default_and_defined() -> None:
    t = parse_trigger(
        "t", "${{ data.who | default('someone') }}/${{ 'yes' if data.flag is defined else 'no' }}"
    )
    assert t.render({}) == "someone/no"
    assert t.render({"who": "ana", "flag": 0}) == "ana/yes"
    assert t.fields == ("who", "flag")


def test_values_render_as_json_not_python_repr() -> None:
    # null renders empty (GitHub sends "body": null); nested nulls stay JSON
    assert (
        parse_trigger("t", "[${{ data.n }}] ${{ data.o }}").render({"n": None, "o": {"a": None}})
        == '[] {"a": null}'
    )
    t = parse_trigger(
        "t", "${{ data.n }}|${{ data.b }}|${{ data.o }}|${{ data.l }}|${{ data.f }}|${{ data.s }}"
    )
    out = t.render({"n": None, "b": False, "o": {"k": "é"}, "l": [1, "a"], "f": 2.5, "s": "plain"})
    assert out == '|false|{"k": "é"}|[1, "a"]|2.5|plain'


def test_keys_shadowing_dict_methods_read_data() -> None:
    t = parse_trigger("t", "${{ data.items }} ${{ data.keys }} ${{ data.values.0 }}")
    assert t.render({"items": "ITEMS", "keys": 3, "values": ["V"]}) == "ITEMS 3 V"


def test_markdown_braces_are_not_template_syntax() -> None:
    source = "Use {{ var }} and {% if x %}...{% endif %} and {# note #} and $HOME and ${x} and {}"
    t = parse_trigger("md", source + " -> ${{ data.a }}")
    assert t.render({"a": "ok"}) == source + " -> ok"
    assert t.fields == ("a",)


@pytest.mark.parametrize(
    "expr",
    [
        "data.__class__",
        "data.__class__.__mro__",
        "data.title.__class__",
        "data.title.upper()",
        "data.title.format(data)",
        "'{0.__class__}'.format(data)",
        "data.__init__.__globals__",
        "data.items()",
        "data.l.append(1)",
        "data.l.pop()",
        "''.__class__.__subclasses__()",
        "range(10)",
        "lipsum()",
        "cycler(1)",
        "self",
        "config",
    ],
)
def test_sandbox_attribute_tricks_do_not_leak(expr: str) -> None:
    t = parse_trigger("s", "x ${{ " + expr + " }}")
    data: dict[str, Any] = {"title": "hi", "l": [1]}
    with pytest.raises(InvalidRequest) as info:
        t.render(data)
    assert any(
        m in info.value.message for m in ("missing template field", "forbidden", "could not be rendered")
    )
    assert "class" not in info.value.message.replace("__class__", "")  # no type names leak
    assert data == {"title": "hi", "l": [1]}  # nothing mutated


def test_attr_filter_is_unavailable() -> None:
    with pytest.raises(ConfigError, match="attr"):
        parse_trigger("s", "${{ data | attr('__class__') }}")


def test_a_key_named_like_a_dunder_is_just_data() -> None:
    t = parse_trigger("s", "${{ data.__class__ }}")
    assert t.render({"__class__": "harmless"}) == "harmless"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\nagent: a\ntransformer: slack\n---\nhi", "unknown front matter key 'transformer'"),
        ("---\nagent: [1]\n---\nhi", "'agent' must be a str"),
        ("---\nuse_async: maybe\n---\nhi", "'use_async' must be a bool"),
        ("---\nagent: a\nhi", "no closing '---'"),
        ("---\n- a\n- b\n---\nhi", "must be a mapping"),
        ("---\nagent: [\n---\nhi", "not valid YAML"),
        ("---\nwebhook: a\nwebhook_url: b\n---\nhi", "either 'webhook_url' or 'webhook'"),
        ("hello ${{ data.a ", "line 1: template error"),
        # lines of the file, front matter included: the broken placeholder is on line 6
        (
            "---\nagent: a\nuse_async: true\n---\nfine ${{ data.x }}\nbroken ${{ data.a ",
            "line 6: template error",
        ),
        ("---\nagent: a\nuse_async: [\n---\nhi", "line 4: front matter is not valid YAML"),
        ("${{ data.a | nosuchfilter }}", "nosuchfilter"),
    ],
)
def test_bad_files_raise_config_error_naming_file(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "bad", text)
    with pytest.raises(ConfigError) as info:
        load_triggers(tmp_path)
    assert "triggers/bad.md" in info.value.message
    assert message in info.value.message
    assert str(tmp_path) not in info.value.message  # no absolute paths


def test_muxi_webhook_key_is_accepted_and_front_matter_is_optional(tmp_path: Path) -> None:
    write(tmp_path, "a", "---\nwebhook: https://h.example/x\n---\nA ${{ data.x }}\n")
    write(tmp_path, "b", "\ufeffno front matter ${{ data.y }}")
    write(tmp_path, "c", "---\n---\nempty front matter")
    (tmp_path / "triggers" / "notes.txt").write_text("ignored")
    triggers = load_triggers(tmp_path)
    assert sorted(triggers) == ["a", "b", "c"]
    assert triggers["a"].webhook_url == "https://h.example/x"
    assert triggers["b"].render({"y": 1}) == "no front matter 1"
    assert triggers["b"].use_async is None and triggers["b"].agent is None
    assert triggers["c"].render({}) == "empty front matter"


def test_invalid_trigger_file_name(tmp_path: Path) -> None:
    write(tmp_path, "has.dot", "hi")
    with pytest.raises(ConfigError, match="only letters, digits"):
        load_triggers(tmp_path)


def test_no_triggers_folder_means_no_triggers(tmp_path: Path) -> None:
    assert load_triggers(tmp_path) == {}


def test_public_view_has_no_paths_source_or_webhook(tmp_path: Path) -> None:
    write(tmp_path, "github-issue", GITHUB_ISSUE)
    t = load_triggers(tmp_path)["github-issue"]
    public = t.public()
    assert public == {
        "name": "github-issue",
        "description": "Triage a new GitHub issue",
        "fields": list(t.fields),
        "agent": "triager",
        "use_async": True,
    }
    assert str(tmp_path) not in repr(public)
    assert "hooks.example.com" not in repr(public)


def test_find_trigger_unknown_is_resource_not_found_without_paths(tmp_path: Path) -> None:
    write(tmp_path, "known", "hi")
    triggers = load_triggers(tmp_path)
    assert isinstance(find_trigger(triggers, "known"), Trigger)
    with pytest.raises(ResourceNotFound) as info:
        find_trigger(triggers, "nope")
    assert info.value.message == "Trigger 'nope' not found; the triggers are: known"
    assert info.value.details == {"trigger": "nope", "valid": ["known"]}
    assert info.value.code == "RESOURCE_NOT_FOUND"
    with pytest.raises(ResourceNotFound) as info:
        find_trigger(triggers, "x" * 500)
    assert len(info.value.message) < 160  # the name is cut; the valid names follow


def test_iterator_filter_results_render_as_json_lists() -> None:
    t = parse_trigger("t", "${{ data.l | map('upper') }}")
    assert t.render({"l": ["a", "b"]}) == '["A", "B"]'


def test_render_accepts_non_object_data() -> None:
    t = parse_trigger("t", "first=${{ data.0 }} all=${{ data }}")
    assert t.render(["a", "b"]) == 'first=a all=["a", "b"]'

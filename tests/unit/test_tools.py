"""Tool schemas from signatures, argument checking and safe invocation (errand.agents.tools)."""

from __future__ import annotations

import enum
import json
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest

from errand.agents.tools import load_tool, load_tools, parameters_schema, tool_from_function, type_schema
from errand.errors import ConfigError, TransientError


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


def search(
    query: str,
    limit: int = 10,
    threshold: float = 0.5,
    exact: bool = False,
    tags: list[str] | None = None,
    weights: dict[str, float] | None = None,
    sort: Literal["date", "score"] = "score",
    region: Optional[str] = None,  # noqa: UP045 - the typing spelling must work too
) -> list[str]:
    """Search the archive for documents.

    Longer explanation the model does not need.
    """
    return [query] * min(limit, 2)


def undocumented(x, y: Any):  # type: ignore[no-untyped-def]
    return x


async def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def where_am_i() -> str:
    """Name the thread the tool runs in."""
    return threading.current_thread().name


def fails_transiently() -> str:
    """Raise an errand error, which must reach the agent."""
    raise TransientError("upstream busy")


def with_kwargs(name: str, **extra: Any) -> dict[str, Any]:
    """Echo its arguments."""
    return {"name": name, **extra}


def positional_only(a: int, /) -> int:
    return a


def takes_object(obj: object) -> str:
    return str(obj)


# --- schemas ----------------------------------------------------------------------------------


def test_schema_from_a_rich_signature() -> None:
    assert parameters_schema(search) == {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "default": 10},
            "threshold": {"type": "number", "default": 0.5},
            "exact": {"type": "boolean", "default": False},
            "tags": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "default": None,
            },
            "weights": {
                "anyOf": [{"type": "object", "additionalProperties": {"type": "number"}}, {"type": "null"}],
                "default": None,
            },
            "sort": {"type": "string", "enum": ["date", "score"], "default": "score"},
            "region": {"type": ["string", "null"], "default": None},
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_openai_entry_uses_the_first_docstring_line() -> None:
    tool = tool_from_function(search)
    assert tool.to_openai() == {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the archive for documents.",
            "parameters": parameters_schema(search),
        },
    }


def test_unannotated_parameters_accept_anything_and_no_docstring_means_no_description() -> None:
    entry = tool_from_function(undocumented).to_openai()
    assert "description" not in entry["function"]
    assert entry["function"]["parameters"]["properties"] == {"x": {}, "y": {}}
    assert entry["function"]["parameters"]["required"] == ["x", "y"]


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (Annotated[int, "how many results"], {"type": "integer", "description": "how many results"}),
        (Colour, {"type": "string", "enum": ["red", "green"]}),
        (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (list[list[int]], {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
        (dict, {"type": "object"}),
        (list, {"type": "array"}),
        (Any, {}),
    ],
)
def test_type_schema(annotation: Any, schema: dict[str, Any]) -> None:
    assert type_schema(annotation) == schema


def test_var_keyword_allows_extra_properties() -> None:
    schema = parameters_schema(with_kwargs)
    assert schema["properties"] == {"name": {"type": "string"}}
    assert "additionalProperties" not in schema


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (takes_object, r"tool takes_object: parameter 'obj': unsupported parameter type"),
        (positional_only, r"tool positional_only: parameter 'a' is positional-only"),
        (lambda q: q, r"tool name '<lambda>' must match"),
    ],
)
def test_unusable_functions_are_refused_with_a_clear_message(fn: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tool_from_function(fn)


# --- calling ----------------------------------------------------------------------------------


async def test_call_validates_and_coerces_arguments() -> None:
    tool = tool_from_function(search)
    result = await tool.call(json.dumps({"query": "errand", "limit": "1"}))
    assert result.is_error is False
    assert result.text == '["errand"]'  # non-str results are sent as JSON


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("{oops", "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object, got list"),
        ('{"limit": 3}', "missing required argument(s) query"),
        ('{"query": "q", "color": "red"}', "unknown argument(s) color; expected query, limit"),
        ('{"query": "q", "limit": "many"}', "limit: Input should be a valid integer"),
        ('{"query": "q", "sort": "size"}', "sort: Input should be 'date' or 'score'"),
        ('{"query": "q", "tags": ["a", 3]}', "tags.1: Input should be a valid string"),
    ],
)
async def test_model_mistakes_become_error_results(arguments: str, expected: str) -> None:
    result = await tool_from_function(search).call(arguments)
    assert result.is_error is True
    assert result.text.startswith("Error: invalid arguments for tool search: ")
    assert expected in result.text
    assert "errors.pydantic.dev" not in result.text


@pytest.mark.parametrize("arguments", [None, "", "  ", "null", "{}"])
async def test_no_arguments_is_fine_for_a_tool_without_parameters(arguments: str | None) -> None:
    result = await tool_from_function(where_am_i).call(arguments)
    assert result.is_error is False


async def test_sync_tools_run_in_a_thread_and_async_tools_are_awaited() -> None:
    sync_result = await tool_from_function(where_am_i).call("{}")
    assert sync_result.text != threading.current_thread().name
    divided = await tool_from_function(divide).call('{"a": 1, "b": 4}')
    assert divided.text == "0.25"


async def test_an_exception_in_the_tool_is_reported_to_the_model() -> None:
    result = await tool_from_function(divide).call('{"a": 1, "b": 0}')
    assert result.is_error is True
    assert result.text == "Error: tool divide raised ZeroDivisionError: float division by zero"


async def test_errand_errors_from_a_tool_pass_through() -> None:
    with pytest.raises(TransientError, match="upstream busy"):
        await tool_from_function(fails_transiently).call("{}")


async def test_extra_arguments_reach_a_var_keyword_tool() -> None:
    result = await tool_from_function(with_kwargs).call('{"name": "n", "colour": "red"}')
    assert json.loads(result.text) == {"name": "n", "colour": "red"}


# --- loading ----------------------------------------------------------------------------------


@pytest.fixture
def tool_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"unit_tools_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            '''
            from __future__ import annotations


            def shout(text: str, times: int = 1) -> str:
                """Repeat text in capitals."""
                return " ".join([text.upper()] * times)


            class Helpers:
                @staticmethod
                def shout(text: str) -> str:
                    """Also shouts."""
                    return text.upper()
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_load_tool_from_the_formation_folder(tool_module: str, tmp_path: Path) -> None:
    tool = load_tool(f"{tool_module}:shout", base_dir=str(tmp_path))
    assert tool.name == "shout"
    assert tool.description == "Repeat text in capitals."
    assert tool.parameters["properties"] == {
        "text": {"type": "string"},
        "times": {"type": "integer", "default": 1},
    }


def test_load_tools_refuses_two_tools_with_one_name(tool_module: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tools\[1\] .*another tool is already named 'shout'"):
        load_tools([f"{tool_module}:shout", f"{tool_module}:Helpers.shout"], base_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("not_a_module_abc:fn", r"tools\[0\] 'not_a_module_abc:fn': cannot import module 'not_a_module_abc'"),
        ("{module}:missing", r"tools\[0\] '{module}:missing': .* has no attribute 'missing'"),
        ("no_colon", r"tools\[0\] 'no_colon': expected module:function"),
    ],
)
def test_load_errors_name_the_tool(tool_module: str, tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.format(module=tool_module)):
        load_tools([spec.format(module=tool_module)], base_dir=str(tmp_path))

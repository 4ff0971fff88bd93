"""Python tools for LLM agents: describe a `module:function` as an OpenAI tool, call it safely.

A tool is a plain or `async` function. Its signature and type hints become the JSON schema the
model sees and its docstring's first line the description, so the function is the single source
of truth. Calling a tool never crashes the agent because of the *model's* mistakes (bad JSON,
unknown, missing or mistyped arguments, an unknown tool name) nor because the tool raised: the
error becomes the tool's result, so the model can correct itself on the next step. errand's own
errors (TransientError, PermanentError, Cancelled) raised by a tool pass through, because they are
decisions about the request, not feedback for the model.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import json
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import pydantic

from errand.agents import loading
from errand.agents.threads import ThreadGroup
from errand.errors import ConfigError, ErrandError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionToolParam
    from openai.types.shared_params import FunctionDefinition

__all__ = [
    "Tool",
    "ToolResult",
    "load_tool",
    "load_tools",
    "parameters_schema",
    "tool_from_function",
    "type_schema",
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    list: {"type": "array"},
    tuple: {"type": "array"},
    set: {"type": "array"},
    frozenset: {"type": "array"},
    dict: {"type": "object"},
}
_ARRAYS = (list, set, frozenset, collections.abc.Sequence, collections.abc.Set, collections.abc.Iterable)
_OBJECTS = (dict, collections.abc.Mapping)
_JSON_SCALARS = (str, int, float, bool, type(None))


class _BadArguments(ValueError):
    """The model sent arguments the tool cannot take; the message is fed back to the model."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call produced, as the text the model will read; `is_error` for reporting."""

    text: str
    is_error: bool = False


@dataclass(frozen=True)
class Tool:
    """A Python function the model may call, with the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] = field(repr=False)
    is_async: bool = field(repr=False, default=False)
    accepts_extra: bool = field(repr=False, default=False)
    _adapters: Mapping[str, pydantic.TypeAdapter[Any]] = field(repr=False, default_factory=dict)

    def to_openai(self) -> ChatCompletionToolParam:
        """The entry for the chat-completions `tools` list (the one Tool -> OpenAI schema)."""
        function: FunctionDefinition = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    async def call(self, arguments: str | None, threads: ThreadGroup | None = None) -> ToolResult:
        """Run the tool with the model's JSON arguments; model-side mistakes become error results.
        A sync tool runs in a thread of `threads` (the attempt's; agents/threads.py)."""
        try:
            kwargs = self._parse_arguments(arguments)
        except _BadArguments as exc:
            return ToolResult(f"Error: invalid arguments for tool {self.name}: {exc}", is_error=True)
        try:
            value = await self._invoke(kwargs, threads)
        except ErrandError:
            raise
        except Exception as exc:
            return ToolResult(f"Error: tool {self.name} raised {type(exc).__name__}: {exc}", is_error=True)
        return ToolResult(_to_text(value))

    def _parse_arguments(self, arguments: str | None) -> dict[str, Any]:
        """JSON text -> validated keyword arguments (lax coercion, e.g. "3" -> 3, as pydantic does)."""
        raw = _decode(arguments)
        required: list[str] = self.parameters.get("required", [])
        unknown = sorted(set(raw) - set(self._adapters))
        if unknown and not self.accepts_extra:
            raise _BadArguments(f"unknown argument(s) {', '.join(unknown)}; expected {self._expected()}")
        missing = [n for n in required if n not in raw]
        if missing:
            raise _BadArguments(f"missing required argument(s) {', '.join(missing)}")
        kwargs: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in raw.items():
            adapter = self._adapters.get(name)
            if adapter is None:
                kwargs[name] = value
                continue
            try:
                kwargs[name] = adapter.validate_python(value)
            except pydantic.ValidationError as exc:
                problems.extend(_describe(name, exc))
        if problems:
            raise _BadArguments("; ".join(problems))
        return kwargs

    def _expected(self) -> str:
        return ", ".join(self._adapters) or "no arguments"

    async def _invoke(self, kwargs: dict[str, Any], threads: ThreadGroup | None) -> Any:
        return await loading.call(self.fn, self.is_async, threads, **kwargs)


def _decode(arguments: str | None) -> dict[str, Any]:
    """Models send "" or "null" for no arguments; anything but a JSON object is refused."""
    if arguments is None or not arguments.strip():
        return {}
    try:
        raw = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise _BadArguments(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _BadArguments(f"arguments must be a JSON object, got {type(raw).__name__}")
    return raw


def _describe(name: str, exc: pydantic.ValidationError) -> list[str]:
    """pydantic errors without their documentation links: short lines a model can act on."""
    out = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in (name, *err["loc"]))
        out.append(f"{where}: {err['msg']}")
    return out


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


# --- JSON schema from type hints -------------------------------------------------------------


def type_schema(tp: Any) -> dict[str, Any]:
    """JSON schema for one annotation; TypeError for a type a model could not fill in."""
    if tp is Any or tp is inspect.Parameter.empty:
        return {}
    if tp in _SIMPLE:
        return dict(_SIMPLE[tp])
    origin = get_origin(tp)
    if origin is Annotated:
        return _annotated_schema(tp)
    if origin is Literal:
        return _enum_schema(list(get_args(tp)))
    if origin is Union or origin is types.UnionType:
        return _union_schema(get_args(tp))
    if origin is tuple:
        return _tuple_schema(get_args(tp))
    if origin in _ARRAYS:
        args = get_args(tp)
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin in _OBJECTS:
        args = get_args(tp)
        return (
            {"type": "object", "additionalProperties": type_schema(args[1])} if args else {"type": "object"}
        )
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([m.value for m in tp])
    raise TypeError(f"unsupported parameter type {tp!r}")


def _annotated_schema(tp: Any) -> dict[str, Any]:
    """`Annotated[int, "how many"]`: a string in the metadata describes the parameter."""
    base, *meta = get_args(tp)
    schema = type_schema(base)
    notes = [m for m in meta if isinstance(m, str)]
    if notes:
        schema["description"] = " ".join(notes)
    return schema


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"enum": values}
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and (kind := kinds.pop()) in _SIMPLE:
        schema = {**_SIMPLE[kind], **schema}
    return schema


def _union_schema(args: tuple[Any, ...]) -> dict[str, Any]:
    """`X | None` becomes `{"type": [X, "null"]}` when X is a plain type, else an anyOf."""
    members = [a for a in args if a is not type(None)]
    nullable = len(members) < len(args)
    if len(members) == 1:
        inner = type_schema(members[0])
        if not nullable:
            return inner
        if set(inner) == {"type"} and isinstance(inner["type"], str):
            return {"type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    options = [type_schema(a) for a in members]
    if nullable:
        options.append({"type": "null"})
    return {"anyOf": options}


def _tuple_schema(args: tuple[Any, ...]) -> dict[str, Any]:
    if not args:
        return {"type": "array"}
    if len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": type_schema(args[0])}
    items = [type_schema(a) for a in args]
    return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}


def parameters_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The `parameters` JSON schema of a function: one property per parameter; no default = required."""
    return _analyse(fn, fn.__name__)[0]


def _signature(fn: Callable[..., Any], name: str) -> inspect.Signature:
    try:
        # eval_str resolves `from __future__ import annotations` strings to real types.
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, ValueError, SyntaxError) as exc:
        raise ConfigError(f"tool {name}: cannot read its signature ({type(exc).__name__}: {exc})") from exc


def _analyse(
    fn: Callable[..., Any], name: str
) -> tuple[dict[str, Any], dict[str, pydantic.TypeAdapter[Any]], bool]:
    """(schema, one validator per parameter, accepts **kwargs) from the signature."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    adapters: dict[str, pydantic.TypeAdapter[Any]] = {}
    accepts_extra = False
    for param in _signature(fn, name).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_extra = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {name}: parameter {param.name!r} is positional-only; tools take keywords"
            )
        properties[param.name], adapters[param.name] = _parameter(param, name)
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if not accepts_extra:
        schema["additionalProperties"] = False
    return schema, adapters, accepts_extra


def _parameter(param: inspect.Parameter, tool: str) -> tuple[dict[str, Any], pydantic.TypeAdapter[Any]]:
    annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
    try:
        schema = type_schema(annotation)
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
    except (TypeError, pydantic.PydanticSchemaGenerationError) as exc:
        raise ConfigError(f"tool {tool}: parameter {param.name!r}: {exc}") from exc
    default = param.default
    if default is not inspect.Parameter.empty and isinstance(default, _JSON_SCALARS):
        schema["default"] = default
    return schema, adapter


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None) -> Tool:
    """Describe a function as a Tool; ConfigError if its name or a parameter type cannot be used."""
    tool_name = name or str(getattr(fn, "__name__", ""))
    if not _NAME.match(tool_name):
        raise ConfigError(f"tool name {tool_name!r} must match {_NAME.pattern} (the OpenAI limit)")
    schema, adapters, accepts_extra = _analyse(fn, tool_name)
    doc = inspect.getdoc(fn) or ""
    description = doc.strip().splitlines()[0].strip() if doc.strip() else ""
    return Tool(tool_name, description, schema, fn, loading.is_async(fn), accepts_extra, adapters)


def load_tool(spec: str, *, base_dir: str | None = ".", where: str = "tool") -> Tool:
    """Import `module:function` (from base_dir or PYTHONPATH) and describe it; errors name `where`."""
    fn = loading.load_function(spec, where=f"{where} {spec!r}", base_dir=base_dir)
    try:
        return tool_from_function(fn)
    except ConfigError as exc:
        raise ConfigError(f"{where} {spec!r}: {exc}") from exc


def load_tools(specs: Sequence[str], *, base_dir: str | None = ".", where: str = "tools") -> dict[str, Tool]:
    """Load every tool of an agent, by name; two tools with the same function name are refused."""
    tools: dict[str, Tool] = {}
    for i, spec in enumerate(specs):
        tool = load_tool(spec, base_dir=base_dir, where=f"{where}[{i}]")
        if tool.name in tools:
            raise ConfigError(f"{where}[{i}] {spec!r}: another tool is already named {tool.name!r}")
        tools[tool.name] = tool
    return tools

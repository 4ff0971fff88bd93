"""User functions (handlers and tools): import `module:function` once, call it without blocking.

Handler agents (agents/registry.py) and LLM tools (agents/tools.py) are both plain or `async`
functions named in formation.yaml. They share one import policy -- the formation's folder first
on sys.path, failures as a ConfigError naming the key, at start rather than per request -- and
one calling policy: an async function is awaited, a sync one runs in a thread (it may block on
HTTP, disk or CPU) so the event loop and its lease renewals stay responsive.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from errand.agents.threads import ThreadGroup
from errand.errors import ConfigError

__all__ = ["call", "is_async", "load_function"]


def load_function(spec: str, *, where: str = "handler", base_dir: str | None = None) -> Callable[..., Any]:
    """Import `module:function` (the function part may be dotted, e.g. `mod:Class.method`).

    Raises ConfigError naming `where` when the module cannot be imported (whatever it raised)
    or the attribute is missing or not callable.
    """
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise ConfigError(f"{where}: expected module:function, got {spec!r}")
    if base_dir is not None:
        folder = str(Path(base_dir).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{where}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{where}: {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ConfigError(f"{where}: {spec!r} is not callable (it is a {type(obj).__name__})")
    fn: Callable[..., Any] = obj
    return fn


def is_async(fn: Callable[..., Any]) -> bool:
    """True for a coroutine function, or an object whose `__call__` is one."""
    call = getattr(fn, "__call__", None)  # noqa: B004 - objects with an async __call__ count too
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


async def call(
    fn: Callable[..., Any], fn_is_async: bool, threads: ThreadGroup | None, /, *args: Any, **kwargs: Any
) -> Any:
    """Await an async `fn`; run a sync one in a thread of `threads` (the attempt's group in the
    worker's own pool; None: asyncio's default pool). The thread cannot be interrupted on
    cancellation. A sync function that returns an awaitable has it awaited too."""
    if fn_is_async:
        return await fn(*args, **kwargs)
    if threads is None:
        value = await asyncio.to_thread(fn, *args, **kwargs)
    else:
        value = await threads.run(fn, *args, **kwargs)
    if inspect.isawaitable(value):
        value = await value
    return value

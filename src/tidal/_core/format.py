"""Text for reprs and error messages, in the exact shapes asyncio produces.

Reprs are part of the compatibility contract: people grep logs for
``<Task pending name='Task-1' coro=<main() running at prog.py:3>>``.
"""

from __future__ import annotations

import functools
import inspect
import reprlib
import sys
import traceback
from typing import Any

#: How many frames debug mode records for a handle or future's origin.
DEBUG_STACK_DEPTH = 10
#: Python 3.13 shows callback arguments only in debug mode (they may be secrets).
_ARGS_ONLY_IN_DEBUG = sys.version_info >= (3, 13)


def callable_source(func: Any) -> tuple[str, int] | None:
    """(filename, first line) of the function behind *func*, if it has one."""
    func = inspect.unwrap(func)
    if inspect.isfunction(func):
        code = func.__code__
        return (code.co_filename, code.co_firstlineno)
    if isinstance(func, (functools.partial, functools.partialmethod)):
        return callable_source(func.func)
    return None


def _format_args(
    args: tuple[Any, ...] | None, kwargs: dict[str, Any] | None, debug: bool = False
) -> str:
    if _ARGS_ONLY_IN_DEBUG and not debug:
        return "()"
    items = [reprlib.repr(a) for a in args] if args else []
    if kwargs:
        items.extend(f"{k}={reprlib.repr(v)}" for k, v in kwargs.items())
    return "(" + ", ".join(items) + ")"


def format_callback(
    func: Any,
    args: tuple[Any, ...] | None,
    kwargs: dict[str, Any] | None = None,
    suffix: str = "",
    debug: bool = False,
) -> str:
    """``name(args)`` for a callback, unwrapping functools.partial."""
    if isinstance(func, functools.partial):
        suffix = _format_args(args, kwargs, debug) + suffix
        return format_callback(func.func, func.args, func.keywords, suffix, debug)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    text = name if isinstance(name, str) and name else repr(func)
    return text + _format_args(args, kwargs, debug) + suffix


def format_callback_source(func: Any, args: tuple[Any, ...] | None, debug: bool = False) -> str:
    """``name(args) at file:line`` (3.13+: ``name()`` unless *debug*)."""
    text = format_callback(func, args, debug=debug)
    source = callable_source(func)
    if source:
        text += f" at {source[0]}:{source[1]}"
    return text


def format_coroutine(coro: Any) -> str:
    """``main() running at prog.py:3`` or ``main() done, defined at ...``."""
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None)
    if not name:
        name = f"<{type(coro).__name__} without __name__>"
    name = f"{name}()"
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    if not code:
        running = getattr(coro, "cr_running", None)
        if running is None:
            running = getattr(coro, "gi_running", False)
        return f"{name} running" if running else name
    frame = getattr(coro, "gi_frame", None) or getattr(coro, "cr_frame", None)
    filename = code.co_filename or "<empty co_filename>"
    if frame is not None:
        return f"{name} running at {filename}:{frame.f_lineno}"
    return f"{name} done, defined at {filename}:{code.co_firstlineno}"


def extract_stack(frame: Any = None, limit: int | None = None) -> traceback.StackSummary:
    """The caller's stack, oldest first, without reading source lines."""
    if frame is None:
        frame = sys._getframe(1)
    stack = traceback.StackSummary.extract(
        traceback.walk_stack(frame), limit=DEBUG_STACK_DEPTH if limit is None else limit,
        lookup_lines=False,
    )
    stack.reverse()
    return stack

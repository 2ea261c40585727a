"""Reprs of futures and tasks, shaped exactly like asyncio's."""

from __future__ import annotations

import reprlib
from typing import Any

from tidal._core.format import format_coroutine
from tidal._core.futures import cb_list, format_callbacks


def future_repr_info(fut: Any) -> list[str]:
    """The words inside ``<Future ...>``: state, result, callbacks, origin."""
    state = fut._state
    info = [state.lower()]
    if state == "FINISHED":
        if fut._exception is not None:
            info.append(f"exception={fut._exception!r}")
        else:
            info.append(f"result={reprlib.repr(fut._result)}")
    if fut._cbs:
        info.append(format_callbacks(cb_list(fut._cbs)))
    if fut._source_traceback:
        frame = fut._source_traceback[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    return info


@reprlib.recursive_repr()
def future_repr(fut: Any) -> str:
    """``<Future pending cb=[...]>``."""
    return f"<{type(fut).__name__} {' '.join(future_repr_info(fut))}>"


def task_repr_info(task: Any) -> list[str]:
    """The words inside ``<Task ...>``, in asyncio's order for this Python."""
    info = future_repr_info(task)
    if task.cancelling() and not task.done():
        info[0] = "cancelling"
    info.insert(1, f"name={task.get_name()!r}")
    if task._fut_waiter is not None:
        info.insert(2, f"wait_for={task._fut_waiter!r}")
    if task._coro:
        info.insert(2, f"coro=<{format_coroutine(task._coro)}>")
    return info


@reprlib.recursive_repr()
def task_repr(task: Any) -> str:
    """``<Task pending name='Task-1' coro=<main() running at prog.py:3>>``."""
    return f"<{type(task).__name__} {' '.join(task_repr_info(task))}>"

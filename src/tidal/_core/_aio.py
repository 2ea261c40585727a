"""The few places where tidal plugs into asyncio's own registries.

tidal implements its loop, futures and tasks itself; asyncio is only the
compatibility surface.  So that ``asyncio.get_running_loop()``,
``asyncio.current_task()`` and ``asyncio.all_tasks()`` see tidal's objects,
tidal writes to the same registries asyncio reads: the running-loop slot, the
per-loop current-task dict and the all-tasks weak set.  They are looked up
once here so the hot paths touch a local dict rather than calling functions.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from asyncio import events as _events
from asyncio import tasks as _tasks
from collections.abc import Callable
from typing import Any

#: loop -> the task running on it; the dict asyncio.current_task() reads.
current_tasks: dict[Any, Any] = _tasks._current_tasks  # type: ignore[attr-defined]

if sys.version_info >= (3, 12):
    _registry: weakref.WeakSet[Any] = _tasks._scheduled_tasks  # type: ignore[attr-defined]
else:
    _registry = _tasks._all_tasks  # type: ignore[attr-defined]

# WeakSet.add() is Python code that re-reads three attributes per call; adding
# the weak reference to its backing set directly does the same work in one
# C call.  The WeakSet's own removal callback keeps the set clean.
_registry_data: set[Any] | None = getattr(_registry, "data", None)
_registry_remove: Callable[..., Any] | None = getattr(_registry, "_remove", None)
_ref = weakref.ref


def register_task(task: object) -> None:
    """Make *task* visible to ``asyncio.all_tasks()``."""
    if _registry_data is not None and _registry_remove is not None:
        _registry_data.add(_ref(task, _registry_remove))
    else:  # pragma: no cover - a WeakSet without its usual internals
        _registry.add(task)


def unregister_task(task: object) -> None:
    """Remove *task* from asyncio's all-tasks registry."""
    _registry.discard(task)


if sys.version_info >= (3, 12):
    _eager: set[Any] = _tasks._eager_tasks  # type: ignore[attr-defined]
else:
    _eager: set[Any] = set()


def register_eager_task(task: object) -> None:
    """Mark *task* as running eagerly (3.12+), as asyncio does."""
    _eager.add(task)


def unregister_eager_task(task: object) -> None:
    """Forget an eagerly started *task*."""
    _eager.discard(task)


if sys.version_info >= (3, 12):
    #: Set (or clear, with None) the loop asyncio.get_running_loop() returns.
    set_running_loop: Callable[[Any], None] = _events._set_running_loop
    #: The running loop of this thread, or None.
    get_running_loop_or_none: Callable[[], Any] = _events._get_running_loop
else:
    # 3.11's lookup makes a getpid() system call each time (~165 ns here) to
    # ignore a loop inherited through fork().  tidal loops also record
    # themselves in a thread-local, cleared in a forked child, and answer from
    # it; anything else falls through to asyncio's lookup.
    class _Running(threading.local):
        loop: Any = None

    _running = _Running()

    def set_running_loop(loop: Any) -> None:
        """Set (or clear, with None) the loop asyncio.get_running_loop() returns."""
        _events._set_running_loop(loop)
        _running.loop = loop

    def get_running_loop_or_none() -> Any:
        """The running loop of this thread, or None."""
        loop = _running.loop
        if loop is not None:
            return loop
        return _events._get_running_loop()

    def _forget_after_fork() -> None:
        _running.loop = None

    os.register_at_fork(after_in_child=_forget_after_fork)


def snapshot_tasks() -> list[Any]:
    """Every registered task (of any loop), copied safely."""
    tasks: list[Any] = list(_eager)
    # Iterating a WeakSet can fail if another thread mutates it: retry.
    for _ in range(1000):
        try:
            tasks.extend(list(_registry))
            break
        except RuntimeError:
            continue
    return tasks

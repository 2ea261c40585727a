"""The rest of asyncio's namespace: transports, servers, policies, task registry hooks.

``tidal`` offers every name of the running Python's ``asyncio.__all__``.  The
names here are either asyncio's own objects where tidal uses them as they are
(the abstract transport bases its transports derive from, the child-watcher
classes, ``iscoroutinefunction``), or tidal's objects in asyncio's role
(``BaseEventLoop``, ``Server``, ``DefaultEventLoopPolicy``), or functions that
do to tidal's registries what asyncio's do to its own — which are the same
registries (see ``tidal._core._aio``), so both modules see the same state.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import (
    AbstractServer,
    BaseTransport,
    DatagramTransport,
    ReadTransport,
    SubprocessTransport,
    Transport,
    WriteTransport,
    iscoroutinefunction,
)
from typing import Any

from tidal._core import _aio
from tidal._core.events import EventLoopPolicy
from tidal._core.loop import BaseEventLoop
from tidal._io.server import Server

__all__ = [
    "AbstractServer", "BaseEventLoop", "BaseTransport", "DatagramTransport",
    "DefaultEventLoopPolicy", "ReadTransport", "Server", "SubprocessTransport", "Transport",
    "WriteTransport", "get_event_loop_policy", "iscoroutinefunction", "set_event_loop_policy",
    "_enter_task", "_get_running_loop", "_leave_task", "_register_task", "_set_running_loop",
    "_unregister_task",
]

#: What asyncio's DefaultEventLoopPolicy is to asyncio: the policy whose loops
#: are the module's own loops.
DefaultEventLoopPolicy = EventLoopPolicy

# Captured at import: ``python -m tidal run`` later points asyncio's name at
# tidal's policy, and only asyncio's stock class needs a tidal view.
_STOCK_POLICY: type[Any] = asyncio.DefaultEventLoopPolicy
_view: list[Any] = [None, None]  # [stock policy, tidal view of it]


def get_event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """The current event-loop policy, shared with asyncio.

    A policy someone installed is returned as it is.  While asyncio's stock
    default is in place, tidal returns a :class:`DefaultEventLoopPolicy` that
    keeps its current loops in the stock policy's own per-thread state — so
    ``set_event_loop()``/``get_event_loop()`` agree with asyncio's — but whose
    ``new_event_loop()`` makes tidal loops, as asyncio's default makes
    asyncio's.
    """
    policy = asyncio.get_event_loop_policy()
    if type(policy) is not _STOCK_POLICY:
        return policy
    stock, view = _view
    if stock is not policy:
        view = EventLoopPolicy()
        view._local = policy._local  # type: ignore[attr-defined]
        _view[:] = [policy, view]
    return view  # type: ignore[no-any-return]


#: Set the event-loop policy asyncio and tidal share (None restores the default).
set_event_loop_policy = asyncio.set_event_loop_policy


def _get_running_loop() -> Any:
    """The running loop of this thread, or None (asyncio's low-level form)."""
    return _aio.get_running_loop_or_none()


def _set_running_loop(loop: Any) -> None:
    """Set (None: clear) this thread's running loop, for custom loop implementations."""
    _aio.set_running_loop(loop)


def _register_task(task: Any) -> None:
    """Make *task* (tidal's, asyncio's or a custom one) visible to ``all_tasks()``."""
    _aio.register_task(task)


def _unregister_task(task: Any) -> None:
    """Remove *task* from the registry ``all_tasks()`` reads."""
    _aio.unregister_task(task)


def _enter_task(loop: Any, task: Any) -> None:
    """Make *task* the current task of *loop*; RuntimeError if another one is."""
    current = _aio.current_tasks.get(loop)
    if current is not None:
        raise RuntimeError(
            f"Cannot enter into task {task!r} while another task {current!r} is being executed."
        )
    _aio.current_tasks[loop] = task


def _leave_task(loop: Any, task: Any) -> None:
    """Undo :func:`_enter_task`; RuntimeError if *task* is not *loop*'s current task."""
    current = _aio.current_tasks.get(loop)
    if current is not task:
        raise RuntimeError(f"Leaving task {task!r} does not match the current task {current!r}.")
    del _aio.current_tasks[loop]


if sys.version_info < (3, 14):
    # tidal watches its children itself (pidfd, or a waiting thread), so the
    # deprecated watcher classes are asyncio's: code that builds one and sets
    # it on the policy keeps working, and asyncio's warnings come with them.
    from asyncio import (
        AbstractChildWatcher,
        FastChildWatcher,
        MultiLoopChildWatcher,
        PidfdChildWatcher,
        SafeChildWatcher,
        ThreadedChildWatcher,
    )

    def get_child_watcher() -> Any:
        """``get_event_loop_policy().get_child_watcher()`` (deprecated on 3.12+)."""
        return get_event_loop_policy().get_child_watcher()

    def set_child_watcher(watcher: Any) -> None:
        """``get_event_loop_policy().set_child_watcher(watcher)`` (deprecated on 3.12+)."""
        return get_event_loop_policy().set_child_watcher(watcher)

    __all__ += [
        "AbstractChildWatcher", "FastChildWatcher", "MultiLoopChildWatcher",
        "PidfdChildWatcher", "SafeChildWatcher", "ThreadedChildWatcher",
        "get_child_watcher", "set_child_watcher",
    ]

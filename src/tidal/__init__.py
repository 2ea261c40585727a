"""tidal: a fast coroutine runtime with asyncio's API, written in Python.

Use it as ``import tidal as asyncio``, run an unchanged asyncio program with
``tidal.run(main())`` / ``asyncio.run(main(), loop_factory=tidal.new_event_loop)``,
or run a script with ``python -m tidal run script.py``.
"""

from __future__ import annotations

# The exception classes are asyncio's own objects, so ``except`` clauses work
# across both.
from asyncio import (
    AbstractEventLoop,
    AbstractEventLoopPolicy,
    BaseProtocol,
    BufferedProtocol,
    CancelledError,
    DatagramProtocol,
    IncompleteReadError,
    InvalidStateError,
    LimitOverrunError,
    Protocol,
    SendfileNotAvailableError,
    SubprocessProtocol,
    TimeoutError,
)
from typing import TYPE_CHECKING

# tidal.subprocess mirrors asyncio.subprocess (PIPE, STDOUT, DEVNULL, Process...).
from tidal import subprocess as subprocess
from tidal._api.gather import *  # noqa: F403
from tidal._api.locks import *  # noqa: F403
from tidal._api.queues import *  # noqa: F403
from tidal._api.runners import *  # noqa: F403
from tidal._api.sleep import sleep
from tidal._api.taskgroups import *  # noqa: F403
from tidal._api.threads import *  # noqa: F403
from tidal._api.timeouts import *  # noqa: F403
from tidal._api.wait import *  # noqa: F403
from tidal._core.bridge import wrap_future
from tidal._core.events import (
    EventLoopPolicy,
    get_event_loop,
    get_running_loop,
    install,
    new_event_loop,
    set_event_loop,
)
from tidal._core.futures import Future, isfuture
from tidal._core.handles import Handle, TimerHandle
from tidal._core.native import compiled_build as _compiled_build
from tidal._core.tasks import (
    Task,
    all_tasks,
    create_eager_task_factory,
    create_task,
    current_task,
    eager_task_factory,
    ensure_future,
    iscoroutine,
)
from tidal._io.process import *  # noqa: F403
from tidal._io.streams import *  # noqa: F403
from tidal._loop import EventLoop
from tidal._namespace import *  # noqa: F403

#: asyncio code names the default loop class this way; tidal has one loop class.
SelectorEventLoop = EventLoop

__version__ = "0.1.0"
#: True in the compiled (mypyc) build, False in the pure-Python one (docs/design.md).
compiled: bool = _compiled_build()

_API_MODULES = (
    "_api.gather", "_api.locks", "_api.queues", "_api.runners", "_api.taskgroups",
    "_api.threads", "_api.timeouts", "_api.wait", "_io.streams", "_io.process",
    "_namespace",
)


def _api_names() -> list[str]:
    import importlib

    names: list[str] = []
    for mod in _API_MODULES:
        names.extend(importlib.import_module(f"tidal.{mod}").__all__)
    return names


if TYPE_CHECKING:
    from tidal._tools.graph import FrameCallGraphEntry as FrameCallGraphEntry
    from tidal._tools.graph import FutureCallGraph as FutureCallGraph
    from tidal._tools.graph import capture_call_graph as capture_call_graph
    from tidal._tools.graph import format_call_graph as format_call_graph
    from tidal._tools.graph import future_add_to_awaited_by as future_add_to_awaited_by
    from tidal._tools.graph import (
        future_discard_from_awaited_by as future_discard_from_awaited_by,
    )
    from tidal._tools.graph import print_call_graph as print_call_graph
    from tidal._tools.trace import start_trace as start_trace
    from tidal._tools.trace import stop_trace as stop_trace
    from tidal._tools.trace import tracing as tracing
    from tidal._tools.watchdog import BlockingReport as BlockingReport
    from tidal._tools.watchdog import watch_blocking as watch_blocking

#: Python 3.14's call-graph API (tidal._tools.graph), imported on first use:
#: its dataclasses would cost every ``import tidal`` a few milliseconds.
_GRAPH_NAMES = (
    "FrameCallGraphEntry", "FutureCallGraph", "capture_call_graph", "format_call_graph",
    "future_add_to_awaited_by", "future_discard_from_awaited_by", "print_call_graph",
)


#: The blocking-call watchdog (tidal._tools.watchdog), imported on first use too.
_WATCHDOG_NAMES = ("BlockingReport", "watch_blocking")
#: Trace recording (tidal._tools.trace), imported on first use too.
_TRACE_NAMES = ("start_trace", "stop_trace", "tracing")


def __getattr__(name: str) -> object:
    if name in _GRAPH_NAMES or name in _WATCHDOG_NAMES or name in _TRACE_NAMES:
        import importlib

        module = importlib.import_module(
            "tidal._tools.graph" if name in _GRAPH_NAMES
            else "tidal._tools.trace" if name in _TRACE_NAMES else "tidal._tools.watchdog"
        )
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tidal' has no attribute {name!r}")


__all__ = [
    "AbstractEventLoop", "AbstractEventLoopPolicy", "BaseProtocol", "BufferedProtocol",
    "CancelledError", "DatagramProtocol", "EventLoop", "EventLoopPolicy", "SelectorEventLoop",
    "Future", "Handle",
    "IncompleteReadError", "InvalidStateError", "LimitOverrunError", "Protocol",
    "SendfileNotAvailableError", "SubprocessProtocol", "Task", "TimeoutError", "TimerHandle",
    "all_tasks", "create_eager_task_factory", "create_task", "current_task", "eager_task_factory",
    "ensure_future", "get_event_loop", "get_running_loop",
    "install", "iscoroutine", "isfuture", "new_event_loop", "set_event_loop", "sleep",
    "wrap_future", *_api_names(),
    *_GRAPH_NAMES, *_WATCHDOG_NAMES, *_TRACE_NAMES,
]

# ``python -m tidal ps/pstree PID``: a handler for one real-time signal, if
# that signal is free; no thread, no port, no cost until someone asks (see
# _tools/inspect_agent.py; TIDAL_INSPECT=0 turns it off).
from tidal._tools import inspect_agent as _inspect_agent  # noqa: E402

_inspect_agent.install()

import os as _os  # noqa: E402

if _os.environ.get("TIDAL_WATCHDOG"):
    # Opt-in blocking-call reports (_tools/watchdog.py): a sampling thread.
    from tidal._tools.watchdog import install_from_environment as _watchdog_from_env

    _watchdog_from_env(_os.environ["TIDAL_WATCHDOG"])

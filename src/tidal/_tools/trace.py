"""Traces you can look at: Chrome/Perfetto trace-event JSON of a running program.

``tidal.start_trace(path)`` / ``tidal.stop_trace()`` (or ``with
tidal.tracing(path):``, or ``python -m tidal run --trace out.json``) record,
for every tidal loop made after the start and the loop running the call:

* a track per task: each step a slice (``"Task-3: fetch"``), and between
  steps a wait slice naming what the task awaited (a sleep, a queue, a lock,
  an event, a socket, another task, a thread-pool call or a plain future) and
  for how long (until the step that resumed it: queueing time included);
* a track per loop: every other ready callback as a slice (I/O readiness
  callbacks with their fd, timers, ``call_soon_threadsafe`` arrivals with the
  thread they came from, as an instant event when they arrive);
* a GC track: each collection (``gc.callbacks``).

The file is the "Trace Event Format" (``X`` complete events, ``i`` instant
events, ``M`` metadata naming the tracks; ``ts``/``dur`` in microseconds)
that ui.perfetto.dev and chrome://tracing open.  Events are kept in a ring
buffer (``buffer`` events, the oldest dropped first) and written at the stop.

Cost while off: none.  The loop's plain turn reads one flag it reads
anyway (debug mode or tracing, ``_slow_turn``); tracing swaps in
``_run_traced`` for that turn's items.  ``python -m tidal trace summary
out.json`` (``trace_summary.py``) prints the top tasks by time held and waited.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tidal._core import _aio
from tidal._core import loop as _loop_module
from tidal._core.errors import asyncio_logger
from tidal._core.tasks import _Task

__all__ = ("DEFAULT_BUFFER", "start_trace", "stop_trace", "tracing")

#: Events kept by default (about 200 bytes each while recording).
DEFAULT_BUFFER = 200_000
_LOOP_TID_BASE = 1_000_000
_GC_TID = 2_000_000
_now = time.perf_counter

#: Innermost coroutine's class (from its qualname) -> what a wait is called.
_WAIT_KINDS = {
    "Queue": "queue", "LifoQueue": "queue", "PriorityQueue": "queue",
    "Lock": "lock", "Semaphore": "semaphore", "BoundedSemaphore": "semaphore",
    "Condition": "condition", "Event": "event", "Barrier": "barrier",
    "StreamReader": "socket", "StreamWriter": "socket", "FlowControlMixin": "socket",
}

# One event: (ph, tid, ts seconds, dur seconds, name, cat, args).
Event = tuple[str, int, float, float, str, str, Any]


class _Tracer:
    """One recording in progress."""

    def __init__(self, path: str, buffer: int) -> None:
        self.path = path
        self.events: deque[Event] = deque(maxlen=buffer)
        self.origin = _now()
        #: id(task) -> [weakref, tid, label, parked at or None, wait name, wait args].
        self.tasks: dict[int, list[Any]] = {}
        self.tids = itertools.count(1)  # next() is atomic: loops in other threads share it
        self.loops: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.loop_names: dict[int, str] = {}  # kept out of the ring buffer
        #: id(handle) -> slice name for I/O and threadsafe handles not yet run.
        self.marked: dict[int, tuple[str, str, Any]] = {}
        self.gc_started = 0.0
        self.lock = threading.Lock()

    def task_info(self, task: Any) -> list[Any]:
        key = id(task)
        info = self.tasks.get(key)
        if info is not None and info[0]() is task:
            return info
        tid = next(self.tids)
        tasks = self.tasks

        def forget(_ref: Any, key: int = key) -> None:
            entry = tasks.get(key)
            if entry is not None and entry[0] is _ref:
                del tasks[key]

        label = f"{_task_name(task)}: {_coro_name(task)}"
        info = [weakref.ref(task, forget), tid, label, None, "", None]
        tasks[key] = info
        return info

    def attach(self, loop: Any) -> int:
        # A loop seen for the first time: a track, and its I/O and thread
        # arrivals marked (instance attributes: the class stays untouched).
        with self.lock:
            tid = self.loops.get(loop)
            if tid is not None:
                return tid
            tid = _LOOP_TID_BASE + len(self.loops)
            self.loops[loop] = tid
        self.loop_names[tid] = f"event loop ({threading.current_thread().name})"
        _patch_loop(self, loop, tid)
        return tid

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.gc_started = _now()
            return
        start = self.gc_started
        self.events.append((
            "X", _GC_TID, start, _now() - start, f"GC gen {info.get('generation')}", "gc",
            {"collected": info.get("collected"), "uncollectable": info.get("uncollectable")},
        ))


_active: list[_Tracer | None] = [None]


def _patch_loop(tracer: _Tracer, loop: Any, tid: int) -> None:
    cls = type(loop)
    process_events = cls._process_events
    call_soon_threadsafe = cls.call_soon_threadsafe
    marked = tracer.marked
    events = tracer.events

    def traced_process_events(ready_fds: list[tuple[int, int]]) -> None:
        if ready_fds:
            fds = loop._fds
            readable = loop._poller.readable
            writable = loop._poller.writable
            for fd, ev in ready_fds:
                entry = fds.get(fd)
                if entry is None:
                    continue
                if ev & readable and entry.reader is not None:
                    marked[id(entry.reader)] = (f"I/O read fd {fd}", "io", {"fd": fd})
                if ev & writable and entry.writer is not None:
                    marked[id(entry.writer)] = (f"I/O write fd {fd}", "io", {"fd": fd})
        process_events(loop, ready_fds)

    def traced_call_soon_threadsafe(callback: Any, *args: Any, context: Any = None) -> Any:
        handle = call_soon_threadsafe(loop, callback, *args, context=context)
        if loop._thread_id not in (None, threading.get_ident()):
            thread = threading.current_thread().name
            what = _callable_name(callback)
            marked[id(handle)] = (f"threadsafe: {what}", "threadsafe", {"thread": thread})
            events.append((
                "i", tid, _now(), 0.0, f"call_soon_threadsafe from {thread}", "threadsafe",
                {"callback": what},
            ))
        return handle

    loop._process_events = traced_process_events
    loop.call_soon_threadsafe = traced_call_soon_threadsafe


def _unpatch_loop(loop: Any) -> None:
    for name in ("_process_events", "call_soon_threadsafe"):
        loop.__dict__.pop(name, None)


def _run_traced(self: Any) -> None:
    """Run this turn's ready items as the loop does, recording each (loop._trace_runner)."""
    loop = self
    ready = loop._ready
    tracer = _active[0]
    if tracer is None:  # stopped from another thread during this turn
        for _ in range(len(ready)):
            ready.popleft()._run()
        return
    loop_tid = tracer.loops.get(loop)
    if loop_tid is None:
        loop_tid = tracer.attach(loop)
    record = tracer.events.append
    marked = tracer.marked
    debug = loop._debug
    for _ in range(len(ready)):
        item = ready.popleft()
        if debug:
            loop._current_handle = item
        try:
            task = item
            if not isinstance(item, _Task):
                # A step can also run from a handle (a wakeup by a foreign future).
                task = getattr(getattr(item, "_callback", None), "__self__", None)
            if isinstance(task, _Task):
                info = tracer.task_info(task)
                tid = info[1]
                start = _now()
                parked = info[3]
                if parked is not None:
                    record(("X", tid, parked, start - parked, info[4], "wait", info[5]))
                item._run()
                end = _now()
                record(("X", tid, start, end - start, info[2], "step", None))
                if task.done():
                    info[3] = None
                else:
                    info[3] = end
                    info[4], info[5] = _describe_wait(task)
                task = None
            else:
                start = _now()
                item._run()
                end = _now()
                mark = marked.pop(id(item), None) if marked else None
                if mark is None:
                    name = _item_name(item)
                    record(("X", loop_tid, start, end - start, name, "callback", None))
                else:
                    record(("X", loop_tid, start, end - start, mark[0], mark[1], mark[2]))
            if debug and end - start >= loop.slow_callback_duration:
                asyncio_logger().warning(
                    "Executing %s took %.3f seconds", _loop_module._format_handle(item),
                    end - start,
                )
        finally:
            if debug:
                loop._current_handle = None
    item = None  # a traceback may keep this frame: do not keep the last item too


def _task_name(task: Any) -> str:
    try:
        return str(task.get_name())
    except Exception:
        return "Task"


def _coro_name(task: Any) -> str:
    coro = getattr(task, "_coro", None)
    return str(getattr(coro, "__qualname__", type(coro).__name__))


def _callable_name(callback: Any) -> str:
    name = getattr(callback, "__qualname__", None)
    if name is None:
        func = getattr(callback, "func", None)  # functools.partial
        name = getattr(func, "__qualname__", type(callback).__name__)
    return str(name)


def _item_name(item: Any) -> str:
    callback = getattr(item, "_callback", None)
    if callback is None:
        return type(item).__name__.lstrip("_")  # a sleep's timer entry, say
    kind = "timer" if hasattr(item, "_when") else "callback"
    return f"{kind}: {_callable_name(callback)}"


def _describe_wait(task: Any) -> tuple[str, dict[str, str]]:
    # At park time: the task's await chain (the outermost coroutine that says
    # what it is: Queue.join, not the Event.wait inside it) and the future
    # it awaits.  A few attribute reads.
    waiter = task._fut_waiter
    chain: list[str] = []
    obj = task._coro
    for _ in range(100):
        code = getattr(obj, "cr_code", None)
        if code is None:
            break  # a future's __await__, or an awaitable of another kind
        chain.append(code.co_qualname)
        obj = getattr(obj, "cr_await", None)
    inner = chain[-1] if chain else ""
    if waiter is None:
        return "wait: yield", {"in": inner}
    args = {"in": inner, "future": type(waiter).__name__}
    if isinstance(waiter, _Task) or hasattr(waiter, "get_coro"):
        return f"wait: task {_task_name(waiter)}", args
    if type(waiter).__name__ == "_GatheringFuture":
        return "wait: gather", args
    for name in chain:
        kind = _wait_kind(name)
        if kind is not None:
            args["in"] = name
            return f"wait: {kind}", args
    if _from_thread_pool(waiter):
        return "wait: thread-pool call", args
    return "wait: future", args


def _wait_kind(qualname: str) -> str | None:
    head, _, tail = qualname.rpartition(".")
    if tail == "sleep":
        return "sleep"
    kind = _WAIT_KINDS.get(head.partition(".")[0])
    if kind is not None:
        return kind
    if tail.startswith("sock_") or tail in ("drain", "_drain_helper", "_wait_for_data"):
        return "socket"
    if tail == "to_thread":
        return "thread-pool call"
    return None


def _from_thread_pool(waiter: Any) -> bool:
    try:
        callbacks = waiter._callbacks or ()
    except Exception:
        return False
    return any("chain_future" in getattr(cb[0], "__qualname__", "") for cb in callbacks)


def start_trace(path: str | os.PathLike[str], *, buffer: int = DEFAULT_BUFFER) -> None:
    """Start recording a trace to write to *path* at :func:`stop_trace`.

    Every tidal loop made from now on is traced, and the loop running in the
    calling thread; *buffer* bounds the events kept (the oldest are dropped).
    """
    if not isinstance(buffer, int) or buffer <= 0:
        raise ValueError(f"buffer must be a positive number of events, not {buffer!r}")
    if _active[0] is not None:
        raise RuntimeError("a trace is already being recorded")
    tracer = _Tracer(os.fspath(path), buffer)
    _active[0] = tracer
    gc.callbacks.append(tracer.on_gc)
    _loop_module._trace_runner = _run_traced
    loop = _aio.get_running_loop_or_none()
    if isinstance(loop, _loop_module.BaseEventLoop):
        loop._slow_turn = True


def stop_trace() -> str | None:
    """Stop recording and write the trace; returns its path (None if none was recording)."""
    tracer = _active[0]
    if tracer is None:
        return None
    _loop_module._trace_runner = None
    _active[0] = None
    try:
        gc.callbacks.remove(tracer.on_gc)
    except ValueError:
        pass
    for loop in list(tracer.loops):
        _unpatch_loop(loop)
    _write(tracer)
    return tracer.path


@contextmanager
def tracing(path: str | os.PathLike[str], *, buffer: int = DEFAULT_BUFFER) -> Iterator[None]:
    """``with tidal.tracing("out.json"):`` -- start_trace() on entry, stop_trace() on exit."""
    start_trace(path, buffer=buffer)
    try:
        yield
    finally:
        stop_trace()


def _write(tracer: _Tracer) -> None:
    pid = os.getpid()
    origin = tracer.origin
    records = sorted(tracer.events, key=lambda event: event[2])
    out: list[dict[str, Any]] = [
        {"ph": "M", "pid": pid, "tid": 0, "name": "process_name",
         "args": {"name": f"tidal pid {pid}"}},
        {"ph": "M", "pid": pid, "tid": _GC_TID, "name": "thread_name", "args": {"name": "GC"}},
    ]
    for tid, name in tracer.loop_names.items():
        out.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                    "args": {"name": name}})
        out.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index",
                    "args": {"sort_index": -1}})
    named: set[int] = set()
    for ph, tid, ts, dur, name, cat, args in records:
        if cat == "step" and tid not in named:
            named.add(tid)
            out.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                        "args": {"name": name}})
            out.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index",
                        "args": {"sort_index": tid}})
        event: dict[str, Any] = {
            "ph": ph, "pid": pid, "tid": tid, "ts": round((ts - origin) * 1e6, 3),
            "name": name, "cat": cat,
        }
        if ph == "X":
            event["dur"] = round(max(dur, 0.0) * 1e6, 3)
        else:
            event["s"] = "t"
        if args:
            event["args"] = args
        out.append(event)
    document = {
        "traceEvents": out,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "tidal", "buffer": tracer.events.maxlen,
            "full": len(tracer.events) == tracer.events.maxlen,
        },
    }
    with open(tracer.path, "w", encoding="utf-8") as fh:
        json.dump(document, fh, separators=(",", ":"))

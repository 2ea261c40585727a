"""Call graphs of tasks and futures: Python 3.14's ``asyncio`` graph API, on 3.11+.

``capture_call_graph()`` returns, for a task or future, its coroutine stack
and the tasks (or futures) that await it, recursively; ``format_call_graph()``
and ``print_call_graph()`` render that as 3.14 does::

    * Task(name='worker', id=0x7f...)
      + Call stack:
      |   File 'app.py', line 7, in async worker()
      + Awaited by:
        * Task(name='Task-1', id=0x7f...)
          + Call stack:
          |   File 'app.py', line 12, in async main()

How "awaited by" is known.  3.14 records it as it happens: every Future
gets a set of awaiters that each ``await`` updates.  tidal records nothing
(no slot, no work on the hot path) and derives it when asked, from what
the futures already hold: a waiting task is in its future's callback list
itself, and so are the records of gather, wait, as_completed and TaskGroup;
a foreign callback is a ``(callback, context)`` pair whose bound method,
partial or closure leads to the waiting task or to an intermediate future,
whose own awaiters are then taken (gather's, shield's and wait's outer
futures do not appear: their awaiters do, as in 3.14).  The same rules
read asyncio's own futures and tasks, so the API works for asyncio's
objects on 3.11-3.13 too.  ``future_add_to_awaited_by()`` adds links these
rules cannot see, in a weak table.

Deliberate differences from 3.14: the children of a ``gather()`` that no
task awaits (yet) have no awaiter, where 3.14 names the task that called
``gather()``; an await cycle is cut at the first repeated node instead of
recursing without end.  The bugs fixed after 3.14.0 are fixed here too:
``print_call_graph()`` does not show its own frame, a synchronous generator
does not end the current task's stack, and the stack goes on through
generator-based coroutines and async generators.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from types import (
    AsyncGeneratorType,
    BuiltinMethodType,
    CoroutineType,
    FrameType,
    FunctionType,
    GeneratorType,
    MethodType,
)
from typing import Any, TextIO

from tidal._api._notify import DoneNotice
from tidal._api.gather import _ChildDone
from tidal._api.sleep import _yield_once
from tidal._api.taskgroups import TaskGroup
from tidal._api.wait import _AsCompletedIterator, _Waiting
from tidal._core import _aio
from tidal._core.futures import Future, cb_list
from tidal._core.tasks import Task

__all__ = (
    "FrameCallGraphEntry",
    "FutureCallGraph",
    "capture_call_graph",
    "format_call_graph",
    "future_add_to_awaited_by",
    "future_discard_from_awaited_by",
    "print_call_graph",
)

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ITERABLE_COROUTINE = 0x100
_CO_ASYNC_GENERATOR = 0x200
_ASYNC_FLAGS = _CO_COROUTINE | _CO_ASYNC_GENERATOR
_ANY_GENERATOR = _ASYNC_FLAGS | _CO_GENERATOR | _CO_ITERABLE_COROUTINE

#: Generators of tidal's own plumbing: asyncio's counterparts are C objects
#: that end a stack, so these end it too.
_HIDDEN_CODES = {
    code
    for code in (getattr(Future.__await__, "__code__", None), _yield_once.__code__)
    if code is not None  # a compiled build's Future.__await__ has no code object
}
#: Wrappers that expose nothing of the async generator or coroutine they
#: drive (``__anext__()``, ``anext(agen, default)``, ``coro.__await__()``);
#: the stack goes on through the object they reference.
_WRAPPERS = frozenset({
    "async_generator_asend", "async_generator_athrow", "anext_awaitable", "coroutine_wrapper",
})

#: Owners of done-callbacks that stand for a task waiting on a group.
_WRAPPED_TYPES = (AsyncGeneratorType, CoroutineType)

_TASKGROUP_TYPES: Any = (TaskGroup, asyncio.TaskGroup)
_AS_COMPLETED_TYPES: Any = (_AsCompletedIterator,) + (
    (asyncio.tasks._AsCompletedIterator,)  # type: ignore[attr-defined]
    if hasattr(asyncio.tasks, "_AsCompletedIterator")
    else ()
)
#: Closure variables of asyncio's and tidal's callbacks that hold the future
#: standing for the waiter (gather and shield: "outer"; wait: "waiter") or
#: the queue whose getters are the waiters (as_completed: "done").
_FUTURE_CELLS = frozenset({"outer", "waiter"})
_QUEUE_CELLS = frozenset({"done"})

# tidal's Future and Task pass isinstance() with asyncio's classes, but their
# subclasses (gather's future...) report themselves: test both.  Typed Any so
# that isinstance() does not narrow what it tests.
_AIO_FUTURE: Any = (Future, asyncio.Future)
_AIO_TASK: Any = (Task, asyncio.Task)


@dataclass(frozen=True, slots=True)
class FrameCallGraphEntry:
    """One frame of a call stack in a :class:`FutureCallGraph`."""

    frame: FrameType


@dataclass(frozen=True, slots=True)
class FutureCallGraph:
    """A future, its call stack (innermost frame first) and the graphs of its awaiters."""

    future: Any
    call_stack: tuple[FrameCallGraphEntry, ...]
    awaited_by: tuple[FutureCallGraph, ...]


# -- explicit links -----------------------------------------------------------

#: future -> weak references to the waiters registered for it.  Weak both
#: ways: a registration never keeps a future or a waiter alive.
_registered: weakref.WeakKeyDictionary[Any, list[weakref.ref[Any]]] = (
    weakref.WeakKeyDictionary()
)


def future_add_to_awaited_by(fut: Any, waiter: Any, /) -> None:
    """Record that *fut* is awaited by *waiter* (both futures or tasks; else no effect).

    For links the call graph cannot see by itself, such as a future completed
    by hand from another future's callback.  Pair it with
    :func:`future_discard_from_awaited_by`.
    """
    if not (isinstance(fut, _AIO_FUTURE) and isinstance(waiter, _AIO_FUTURE)):
        return
    refs = _registered.get(fut)
    if refs is None:
        _registered[fut] = [weakref.ref(waiter)]
    elif all(ref() is not waiter for ref in refs):
        refs.append(weakref.ref(waiter))


def future_discard_from_awaited_by(fut: Any, waiter: Any, /) -> None:
    """Undo :func:`future_add_to_awaited_by` (no effect if *waiter* is not recorded)."""
    if not (isinstance(fut, _AIO_FUTURE) and isinstance(waiter, _AIO_FUTURE)):
        return
    refs = _registered.get(fut)
    if refs is None:
        return
    kept = [ref for ref in refs if ref() is not waiter and ref() is not None]
    if kept:
        _registered[fut] = kept
    else:
        del _registered[fut]


# -- who awaits a future --------------------------------------------------------


def awaited_by(fut: Any) -> list[Any]:
    """The tasks (and registered futures) awaiting *fut* now, in registration order."""
    found: list[Any] = []
    ids: set[int] = set()
    seen = {id(fut)}
    for waiter in _entry_waiters(fut, seen):
        if id(waiter) not in ids:
            ids.add(id(waiter))
            found.append(waiter)
    refs = _registered.get(fut)
    if refs:
        for ref in list(refs):
            waiter = ref()
            if waiter is not None and id(waiter) not in ids:
                ids.add(id(waiter))
                found.append(waiter)
    return found


def _entries(fut: Any) -> list[Any]:
    # A copy of the callback list: a loop in another thread may change it.
    if isinstance(fut, Future):
        return list(cb_list(fut._cbs))
    try:
        callbacks = fut._callbacks  # asyncio's futures: (callback, context) pairs
    except AttributeError:
        return []
    return list(callbacks or ())


def _entry_waiters(fut: Any, seen: set[int]) -> Iterator[Any]:
    for entry in _entries(fut):
        cls = type(entry)
        if cls is tuple:
            yield from _callback_waiters(entry[0], fut, seen)
        elif isinstance(entry, Task):  # a tidal task parked on fut
            yield entry
        elif cls is _ChildDone:  # a gather child: whoever awaits the gather
            yield from _through(entry._outer, seen)
        elif cls is DoneNotice:  # wait, as_completed, TaskGroup
            yield from _owner_waiters(entry._owner, seen)
        else:
            pair = getattr(entry, "_callback_pair", None)
            if pair is not None:
                yield from _callback_waiters(pair()[0], fut, seen)


def _through(fut: Any, seen: set[int]) -> Iterator[Any]:
    # A task stands for itself; an intermediate future for its own awaiters.
    if isinstance(fut, _AIO_TASK):
        yield fut
        return
    if id(fut) in seen:
        return
    seen.add(id(fut))
    yield from _entry_waiters(fut, seen)
    refs = _registered.get(fut)
    if refs:
        for ref in list(refs):
            waiter = ref()
            if waiter is not None:
                yield waiter


def _owner_waiters(owner: Any, seen: set[int]) -> Iterator[Any]:
    # The object a bound callback or DoneNotice belongs to.  Only known types:
    # attribute lookups on arbitrary objects could run their code.
    if isinstance(owner, _AIO_FUTURE):
        yield from _through(owner, seen)
    elif isinstance(owner, _TASKGROUP_TYPES):
        parent = owner._parent_task
        if parent is not None:
            yield parent
    elif type(owner) is _Waiting:
        yield from _through(owner.waiter, seen)
    elif isinstance(owner, _AS_COMPLETED_TYPES):
        yield from _queue_waiters(owner._done, seen)


def _queue_waiters(queue: Any, seen: set[int]) -> Iterator[Any]:
    # as_completed's queue of finished futures: its getters are the waiters.
    getters = getattr(queue, "_getters", None)
    for getter in list(getters or ()):
        if isinstance(getter, _AIO_FUTURE):
            yield from _through(getter, seen)


def _callback_waiters(callback: Any, fut: Any, seen: set[int]) -> Iterator[Any]:
    cls = type(callback)
    if cls is MethodType or cls is BuiltinMethodType:
        # A bound method: Task.__wakeup (asyncio's C task_wakeup too),
        # TaskGroup._on_task_done, gather's _child_done...
        owner = callback.__self__
        if owner is not fut:
            yield from _owner_waiters(owner, seen)
        return
    if cls is functools.partial:  # wait_for's _release_waiter(waiter)
        for arg in callback.args:
            if isinstance(arg, _AIO_FUTURE) and arg is not fut:
                yield from _through(arg, seen)
        return
    if cls is FunctionType and callback.__closure__:
        code = callback.__code__
        for name, cell in zip(code.co_freevars, callback.__closure__, strict=True):
            if name in _FUTURE_CELLS or name in _QUEUE_CELLS:
                try:
                    value = cell.cell_contents
                except ValueError:  # not assigned yet
                    continue
                if name in _QUEUE_CELLS:
                    yield from _queue_waiters(value, seen)
                elif isinstance(value, _AIO_FUTURE) and value is not fut:
                    yield from _through(value, seen)


# -- call stacks ----------------------------------------------------------------


def coroutine_frames(coro: Any) -> list[FrameType]:
    """The frames of a suspended coroutine chain, outermost first.

    Follows what each coroutine awaits: coroutines, async generators (also
    through the ``asend``/``athrow``/``anext`` wrappers that hide them) and
    generator-based coroutines; stops at a future or any other awaitable.
    """
    frames: list[FrameType] = []
    for _ in range(10_000):  # bounded: a pathological chain must not hang a capture
        if coro is None:
            break
        if hasattr(coro, "cr_await"):
            frame, nxt = coro.cr_frame, coro.cr_await
        elif hasattr(coro, "ag_await"):
            frame, nxt = coro.ag_frame, coro.ag_await
        elif type(coro) is GeneratorType:
            if coro.gi_code in _HIDDEN_CODES:
                break
            frame, nxt = coro.gi_frame, coro.gi_yieldfrom
        elif type(coro).__name__ in _WRAPPERS:
            coro = next(
                (r for r in gc.get_referents(coro) if type(r) in _WRAPPED_TYPES), None
            )
            continue
        else:
            break
        if frame is None:  # finished
            break
        frames.append(frame)
        coro = nxt
    return frames


def _future_stack(fut: Any, limit: int | None) -> tuple[FrameCallGraphEntry, ...]:
    if limit == 0:
        return ()
    get_coro = getattr(fut, "get_coro", None)
    frames = coroutine_frames(get_coro()) if get_coro is not None else []
    if limit is not None:
        frames = frames[:limit] if limit > 0 else frames[limit:]
    frames.reverse()
    return tuple(FrameCallGraphEntry(f) for f in frames)


def _current_stack(frame: FrameType | None, limit: int | None) -> tuple[FrameCallGraphEntry, ...]:
    # The running task's stack: the live frames from *frame* down to the
    # task's outermost coroutine (the next frame is the loop's, not async).
    if limit == 0:
        return ()
    frames: list[FrameType] = []
    while frame is not None:
        frames.append(frame)
        back = frame.f_back
        if (
            frame.f_code.co_flags & _ASYNC_FLAGS
            and back is not None
            and not back.f_code.co_flags & _ANY_GENERATOR
        ):
            break
        frame = back
    del frame
    if limit is not None:
        frames = frames[-limit:] if limit > 0 else frames[:-limit]
    return tuple(FrameCallGraphEntry(f) for f in frames)


def _graph(fut: Any, limit: int | None, path: set[int]) -> FutureCallGraph:
    if not isinstance(fut, _AIO_FUTURE):
        raise TypeError(f"{fut!r} object does not appear to be compatible with asyncio.Future")
    return FutureCallGraph(fut, _future_stack(fut, limit), _awaiter_graphs(fut, limit, path))


def _awaiter_graphs(fut: Any, limit: int | None, path: set[int]) -> tuple[FutureCallGraph, ...]:
    key = id(fut)
    if key in path:  # an await cycle: cut it here (3.14 recurses without end)
        return ()
    path.add(key)
    try:
        return tuple(_graph(waiter, limit, path) for waiter in awaited_by(fut))
    finally:
        path.discard(key)


def _capture(future: Any, frame_depth: int, limit: int | None) -> FutureCallGraph | None:
    # *frame_depth* counts from this function's frame (see capture_call_graph).
    loop = _aio.get_running_loop_or_none()
    if future is not None:
        if loop is None or future is not _aio.current_tasks.get(loop):
            return _graph(future, limit, set())
    else:
        if loop is None:
            raise RuntimeError(
                "capture_call_graph() is called outside of a running "
                "event loop and no *future* to introspect was provided"
            )
        future = _aio.current_tasks.get(loop)
        if future is None:
            return None
    if not isinstance(future, _AIO_FUTURE):
        raise TypeError(f"{future!r} object does not appear to be compatible with asyncio.Future")
    stack = _current_stack(sys._getframe(frame_depth), limit)
    return FutureCallGraph(future, stack, _awaiter_graphs(future, limit, set()))


def capture_call_graph(
    future: Any = None, /, *, depth: int = 1, limit: int | None = None
) -> FutureCallGraph | None:
    """The call graph of *future*, or of the current task: see Python 3.14's asyncio.

    Returns ``FutureCallGraph(future, call_stack, awaited_by)``: the
    future's call stack (innermost frame first, as ``FrameCallGraphEntry``
    objects) and the graphs of the tasks awaiting it.  Without *future*,
    the current task's graph, or None outside a task.  For the current task,
    *depth* skips that many frames from the top of the stack (1: start at
    the caller).  *limit* keeps at most ``abs(limit)`` entries of each call
    stack: the outermost ones if positive, the innermost if negative; 0
    keeps none (only the "awaited by" links).
    """
    return _capture(future, depth + 1, limit)


def format_call_graph(
    future: Any = None, /, *, depth: int = 1, limit: int | None = None
) -> str:
    """:func:`capture_call_graph` rendered as text, as Python 3.14 renders it ("" if none)."""
    graph = _capture(future, depth + 1, limit)
    if graph is None:
        return ""
    lines: list[str] = []
    try:
        _render(graph, lines, 0)
    finally:
        del graph  # it holds frames: let them go now
    return "\n".join(lines)


def print_call_graph(
    future: Any = None,
    /,
    *,
    file: TextIO | None = None,
    depth: int = 1,
    limit: int | None = None,
) -> None:
    """Print :func:`format_call_graph` to *file* (default: ``sys.stdout``)."""
    print(format_call_graph(future, depth=depth + 1, limit=limit), file=file)


def _render(node: FutureCallGraph, lines: list[str], level: int) -> None:
    indent = "    " * level
    fut = node.future
    if isinstance(fut, _AIO_TASK):
        lines.append(f"{indent}* Task(name={fut.get_name()!r}, id={id(fut):#x})")
    else:
        lines.append(f"{indent}* Future(id={id(fut):#x})")
    if node.call_stack:
        lines.append(f"{indent}  + Call stack:")
        for entry in node.call_stack:
            lines.append(f"{indent}  |   {describe_frame(entry.frame)}")
    if node.awaited_by:
        lines.append(f"{indent}  + Awaited by:")
        for waiter in node.awaited_by:
            _render(waiter, lines, level + 1)


def frame_kind(frame: FrameType) -> str:
    """'async', 'async generator', 'generator' or '' (a plain function's frame)."""
    flags = frame.f_code.co_flags
    if flags & _CO_COROUTINE:
        return "async"
    if flags & _CO_ASYNC_GENERATOR:
        return "async generator"
    if flags & (_CO_GENERATOR | _CO_ITERABLE_COROUTINE):
        return "generator"
    return ""


def describe_frame(frame: FrameType) -> str:
    """``File 'x.py', line 3, in async main()``: one call-stack line, as 3.14 prints it."""
    code = frame.f_code
    kind = frame_kind(frame)
    where = f"{kind} {code.co_qualname}()" if kind else f"{code.co_qualname}()"
    return f"File {code.co_filename!r}, line {frame.f_lineno}, in {where}"

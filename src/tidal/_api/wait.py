"""``wait``, ``wait_for`` and ``as_completed``.

Each follows the running Python's asyncio:

* ``wait_for`` on 3.11 is its own waiter-and-timer dance (the awaitable is
  always wrapped in a task); on 3.12+ it is ``async with timeout(...)``
  around a plain ``await`` of the argument.
* ``as_completed`` on 3.11/3.12 is a generator (so even its argument checks
  run on the first ``next()``); on 3.13 it is an iterator object that is
  also an async iterator yielding the original futures.

Deliberate difference (the "older forms tutorials still teach"): ``wait()``
accepts bare coroutines, wrapping them in tasks with a DeprecationWarning,
where asyncio 3.11+ raises TypeError.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import sys
import warnings
from asyncio import CancelledError
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable, Iterator
from typing import Any

from tidal._api._notify import listen, unlisten
from tidal._api.timeouts import timeout as _timeout
from tidal._core.events import get_event_loop, get_running_loop
from tidal._core.futures import failure, isfuture
from tidal._core.tasks import ensure_future, iscoroutine

__all__ = (
    "ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "as_completed", "wait", "wait_for",
)

FIRST_COMPLETED = concurrent.futures.FIRST_COMPLETED
FIRST_EXCEPTION = concurrent.futures.FIRST_EXCEPTION
ALL_COMPLETED = concurrent.futures.ALL_COMPLETED

_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)


# -- wait -------------------------------------------------------------------


async def wait(
    fs: Iterable[Any], *, timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> tuple[set[Any], set[Any]]:
    """Wait for the futures/tasks in *fs*; return the sets ``(done, pending)``.

    Returns when *return_when* says (first completed, first exception, or
    all completed) or after *timeout* seconds; it never raises TimeoutError.
    Bare coroutines are wrapped in tasks, with a DeprecationWarning (asyncio
    3.11+ raises TypeError; tidal keeps the older behaviour on purpose).
    """
    if isfuture(fs) or iscoroutine(fs):
        raise TypeError(f"expect a list of futures, not {type(fs).__name__}")
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(f"Invalid return_when value: {return_when}")
    futures = set(fs)
    loop = get_running_loop()
    if any(iscoroutine(f) for f in futures):
        warnings.warn(
            "Passing coroutines to wait() is deprecated: they are wrapped in tasks, and "
            "the sets returned hold those tasks, not the coroutines (asyncio raises "
            "TypeError here since Python 3.11); create the tasks explicitly.",
            DeprecationWarning, stacklevel=2,
        )
        futures = {ensure_future(f, loop=loop) for f in futures}
    return await _wait(futures, timeout, return_when, loop)


class _Waiting:
    """One ``_wait()`` call: counts completions and releases the waiter."""

    __slots__ = ("waiter", "remaining", "return_when", "timer")

    def __init__(self, waiter: Any, remaining: int, return_when: str) -> None:
        self.waiter = waiter
        self.remaining = remaining
        self.return_when = return_when
        self.timer: Any = None

    def _on_completion(self, fut: Any) -> None:
        self.remaining -= 1
        if (
            self.remaining <= 0
            or self.return_when == FIRST_COMPLETED
            or (
                self.return_when == FIRST_EXCEPTION
                and not fut.cancelled()
                and fut.exception() is not None
            )
        ):
            if self.timer is not None:
                self.timer.cancel()
            if not self.waiter.done():
                self.waiter.set_result(None)


def _release_waiter(waiter: Any, *args: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _wait(
    fs: set[Any], timeout: float | None, return_when: str, loop: Any
) -> tuple[set[Any], set[Any]]:
    # The body of wait(), for a non-empty set of futures.
    waiter = loop.create_future()
    state = _Waiting(waiter, len(fs), return_when)
    if timeout is not None:
        state.timer = loop.call_later(timeout, _release_waiter, waiter)
    on_completion = _Waiting._on_completion
    for f in fs:
        listen(on_completion, state, f)
    try:
        await waiter
    finally:
        if state.timer is not None:
            state.timer.cancel()
        for f in fs:
            unlisten(on_completion, state, f)
    done: set[Any] = set()
    pending: set[Any] = set()
    for f in fs:
        if f.done():
            done.add(f)
        else:
            pending.add(f)
    return done, pending


async def _cancel_and_wait(fut: Any, loop: Any) -> None:
    # Cancel *fut* and wait until it is really done, through a separate
    # waiter so that this coroutine itself stays cancellable.
    waiter = loop.create_future()
    release = functools.partial(_release_waiter, waiter)
    fut.add_done_callback(release)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(release)


# -- wait_for -----------------------------------------------------------------


if _PY312:

    async def wait_for(fut: Awaitable[Any], timeout: float | None) -> Any:
        """Wait for *fut* (a future or coroutine) for at most *timeout* seconds.

        On timeout the awaitable is cancelled and TimeoutError raised; if the
        wait itself is cancelled, so is the awaitable.  Wrap it in ``shield()``
        to keep it running.  (Python 3.12+'s wait_for: a timeout() block around
        a plain await, so a coroutine runs inside the calling task.)
        """
        if timeout is not None and timeout <= 0:
            # Expired already: the awaitable must not even start (if not done).
            task = ensure_future(fut)
            if task.done():
                error = failure(task)  # raised here: no Future.result frame
                if error is not None:
                    raise error
                return task.result()
            await _cancel_and_wait(task, get_running_loop())
            try:
                return task.result()
            except CancelledError as exc:
                raise TimeoutError from exc
        async with _timeout(timeout):
            return await fut

else:

    async def wait_for(fut: Awaitable[Any], timeout: float | None) -> Any:
        """Wait for *fut* (a future or coroutine) for at most *timeout* seconds.

        On timeout the awaitable is cancelled and TimeoutError raised; if the
        wait itself is cancelled, so is the awaitable.  Wrap it in ``shield()``
        to keep it running.  (Python 3.11's wait_for: the awaitable always runs
        as a task of its own.)
        """
        loop = get_running_loop()
        if timeout is None:
            return await fut
        if timeout <= 0:
            task = ensure_future(fut, loop=loop)
            if task.done():
                error = failure(task)  # raised here: no Future.result frame
                if error is not None:
                    raise error
                return task.result()
            await _cancel_and_wait(task, loop)
            try:
                return task.result()
            except CancelledError as exc:
                raise TimeoutError() from exc
        waiter = loop.create_future()
        timer = loop.call_later(timeout, _release_waiter, waiter)
        release = functools.partial(_release_waiter, waiter)
        task = ensure_future(fut, loop=loop)
        task.add_done_callback(release)
        try:
            try:
                await waiter
            except CancelledError:
                if task.done():
                    error = failure(task)  # raised here: no Future.result frame
                    if error is not None:
                        raise error
                    return task.result()
                task.remove_done_callback(release)
                # The task must not outlive wait_for() (bpo-32751).
                await _cancel_and_wait(task, loop)
                raise
            if task.done():
                error = failure(task)  # raised here: no Future.result frame
                if error is not None:
                    raise error
                return task.result()
            task.remove_done_callback(release)
            await _cancel_and_wait(task, loop)
            # The cancelled task may still have finished some other way (bpo-40607).
            try:
                return task.result()
            except CancelledError as exc:
                raise TimeoutError() from exc
        finally:
            timer.cancel()


# -- as_completed ---------------------------------------------------------------


class _DoneQueue:
    """The queue of finished futures behind as_completed().

    It behaves as ``asyncio.Queue`` get()/put_nowait() do (which is what
    asyncio uses here), so wake-ups happen in the same loop turns.
    """

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._getters: deque[Any] = deque()

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_next()

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> Any:
        items = self._items
        while not items:
            getter = get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                try:
                    self._getters.remove(getter)
                except ValueError:
                    pass  # put_nowait() already took it off
                if items and not getter.cancelled():
                    # Woken by put_nowait() but leaving: pass the turn on.
                    self._wake_next()
                raise
        return items.popleft()


class _AsCompletedIterator:
    """3.13's as_completed(): a plain and an async iterator at once.

    ``for`` yields coroutines giving the next result; ``async for`` yields
    the finished futures themselves (the original ones, where they were
    futures).
    """

    __slots__ = ("_done", "_timeout_handle", "_todo", "_todo_left")

    def __init__(self, aws: Iterable[Any], timeout: float | None) -> None:
        self._done = _DoneQueue()
        self._timeout_handle: Any = None
        loop = get_event_loop()
        todo = {ensure_future(aw, loop=loop) for aw in set(aws)}
        for f in todo:
            listen(_AsCompletedIterator._handle_completion, self, f)
        if todo and timeout is not None:
            self._timeout_handle = loop.call_later(timeout, self._handle_timeout)
        self._todo = todo
        self._todo_left = len(todo)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    def __iter__(self) -> Iterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if not self._todo_left:
            raise StopAsyncIteration
        self._todo_left -= 1
        return await self._wait_for_one()

    def __next__(self) -> Coroutine[Any, Any, Any]:
        if not self._todo_left:
            raise StopIteration
        self._todo_left -= 1
        return self._wait_for_one(resolve=True)

    def _handle_timeout(self) -> None:
        for f in self._todo:
            unlisten(_AsCompletedIterator._handle_completion, self, f)
            self._done.put_nowait(None)  # one sentinel per waiter still to come
        self._todo.clear()

    def _handle_completion(self, f: Any) -> None:
        if not self._todo:
            return  # the timeout came first
        self._todo.remove(f)
        self._done.put_nowait(f)
        if not self._todo and self._timeout_handle is not None:
            self._timeout_handle.cancel()

    async def _wait_for_one(self, resolve: bool = False) -> Any:
        f = await self._done.get()
        if f is None:
            raise TimeoutError
        if not resolve:
            return f
        error = failure(f)  # raised here: no Future.result frame
        if error is not None:
            raise error
        return f.result()


if _PY313:

    def as_completed(fs: Iterable[Any], *, timeout: float | None = None) -> Iterator[Any]:
        """Iterate over awaitables in the order they complete.

        Plain iteration yields coroutines: awaiting each gives the next result
        (or raises its exception).  ``async for`` yields the finished futures
        themselves (Python 3.13).  After *timeout* seconds the remaining awaits
        raise TimeoutError.
        """
        if inspect.isawaitable(fs):
            raise TypeError(f"expects an iterable of awaitables, not {type(fs).__name__}")
        return _AsCompletedIterator(fs, timeout)

else:

    def as_completed(fs: Iterable[Any], *, timeout: float | None = None) -> Iterator[Any]:
        """Iterate over awaitables in the order they complete.

        Yields coroutines: awaiting each gives the next result (or raises its
        exception).  After *timeout* seconds the remaining awaits raise
        TimeoutError.  (Python 3.11/3.12: a generator, so even the argument
        checks run on the first ``next()``.)
        """
        if isfuture(fs) or iscoroutine(fs):
            raise TypeError(f"expect an iterable of futures, not {type(fs).__name__}")
        done = _DoneQueue()
        loop = get_event_loop()
        todo = {ensure_future(f, loop=loop) for f in set(fs)}
        timer: Any = None

        def _on_timeout() -> None:
            for f in todo:
                f.remove_done_callback(_on_completion)
                done.put_nowait(None)  # one sentinel per waiter still to come
            todo.clear()

        def _on_completion(f: Any) -> None:
            if not todo:
                return  # the timeout came first
            todo.remove(f)
            done.put_nowait(f)
            if not todo and timer is not None:
                timer.cancel()

        async def _wait_for_one() -> Any:
            f = await done.get()
            if f is None:
                raise TimeoutError
            error = failure(f)  # raised here: no Future.result frame
            if error is not None:
                raise error
            return f.result()

        for f in todo:
            f.add_done_callback(_on_completion)
        if todo and timeout is not None:
            timer = loop.call_later(timeout, _on_timeout)
        for _ in range(len(todo)):
            yield _wait_for_one()

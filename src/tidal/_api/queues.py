"""Queues for producer and consumer tasks: Queue, PriorityQueue, LifoQueue.

They behave exactly as asyncio's queues on the running Python version
(``shutdown()`` and QueueShutDown from 3.13 on).  The exceptions are
asyncio's own classes, so ``except asyncio.QueueEmpty`` catches tidal's too.

Speed: ``put()`` and ``get()`` do the non-blocking case inline, without
calling ``full()``, ``put_nowait()``, ``_put()`` and friends; a waiter future
is only made when the task really has to block.  asyncio's queues route every
operation through those overridable methods, so a subclass that overrides any
of them gets that same routing (``_standard`` is False for it), and one that
only replaces the storage hooks ``_init``/``_put``/``_get`` (as PriorityQueue
and LifoQueue do) gets the inline logic around calls to its hooks
(``_deque`` is False for it).
"""

from __future__ import annotations

import heapq
import sys
from asyncio import QueueEmpty, QueueFull
from collections import deque
from collections.abc import Callable
from types import GenericAlias
from typing import Any, ClassVar, Generic, TypeVar

from tidal._api._loopbound import LoopBound, get_ident
from tidal._api.locks import Event

_PY313 = sys.version_info >= (3, 13)

if sys.version_info >= (3, 13):
    from asyncio import QueueShutDown

    __all__: tuple[str, ...] = (
        "Queue", "PriorityQueue", "LifoQueue", "QueueFull", "QueueEmpty", "QueueShutDown",
    )
else:

    class QueueShutDown(Exception):
        """Placeholder: queues cannot be shut down before Python 3.13."""

    __all__ = ("Queue", "PriorityQueue", "LifoQueue", "QueueFull", "QueueEmpty")

_T = TypeVar("_T")

# The methods asyncio's put()/get() go through; overriding one of them
# makes a subclass take the routed (asyncio-shaped) path.
_ROUTED = (
    "full", "empty", "qsize", "put_nowait", "get_nowait", "_wakeup_next", "_get_loop",
)
_STORAGE = ("_init", "_put", "_get")


def _wakeup_next(waiters: deque[Any]) -> None:
    # Wake the first waiter that is still waiting; drop the others.
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            break


class Queue(LoopBound, Generic[_T]):
    """A FIFO queue for tasks.

    With *maxsize* <= 0 the queue is unbounded; otherwise ``put()`` blocks
    while it holds *maxsize* items, until ``get()`` makes room.
    """

    __slots__ = (
        "_maxsize", "_getters", "_putters", "_unfinished_tasks", "_finished", "_queue",
        "_is_shutdown",
    )

    #: True unless a subclass overrides one of the ``_ROUTED`` methods.
    _standard: ClassVar[bool] = True
    #: True when the storage hooks are Queue's own: put()/get() then use the
    #: ``_queue`` deque directly instead of calling ``_put``/``_get``.
    _deque: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._standard = not _overrides(cls, _ROUTED)
        cls._deque = cls._standard and not _overrides(cls, _STORAGE)

    def __init__(self, maxsize: int = 0) -> None:
        LoopBound.__init__(self)
        self._maxsize: int = maxsize
        self._getters: deque[Any] = deque()  # futures of tasks blocked in get()
        self._putters: deque[Any] = deque()  # futures of tasks blocked in put()
        self._unfinished_tasks: int = 0
        self._finished: Event = Event()
        self._finished.set()
        self._init(maxsize)
        self._is_shutdown: bool = False

    # The storage hooks, overridable in subclasses.

    def _init(self, maxsize: int) -> None:
        self._queue: Any = deque()

    def _get(self) -> _T:
        item: _T = self._queue.popleft()
        return item

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _wakeup_next(self, waiters: deque[Any]) -> None:
        _wakeup_next(waiters)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    __class_getitem__: Any = classmethod(GenericAlias)

    def _format(self) -> str:
        result = f"maxsize={self._maxsize!r}"
        if getattr(self, "_queue", None):
            result += f" _queue={list(self._queue)!r}"
        if self._getters:
            result += f" _getters[{len(self._getters)}]"
        if self._putters:
            result += f" _putters[{len(self._putters)}]"
        if self._unfinished_tasks:
            result += f" tasks={self._unfinished_tasks}"
        if _PY313 and self._is_shutdown:
            result += " shutdown"
        return result

    def qsize(self) -> int:
        """Number of items in the queue."""
        return len(self._queue)

    @property
    def maxsize(self) -> int:
        """Number of items allowed in the queue (<= 0: no limit)."""
        return self._maxsize

    def empty(self) -> bool:
        """True if the queue holds no item."""
        return not self._queue

    def full(self) -> bool:
        """True if the queue holds *maxsize* items (never, when unbounded)."""
        if self._maxsize <= 0:
            return False
        return self.qsize() >= self._maxsize

    async def put(self, item: _T) -> None:
        """Put *item* in the queue, waiting while it is full."""
        if not self._standard:
            return await self._put_routed(item)
        maxsize = self._maxsize
        if maxsize <= 0 or not len(self._queue) >= maxsize:
            # Room: the whole of put_nowait(), inline.
            if self._is_shutdown:
                raise QueueShutDown
            if self._deque:
                self._queue.append(item)
            else:
                self._put(item)
            self._unfinished_tasks += 1
            self._finished._value = False
            if self._getters:
                _wakeup_next(self._getters)
            return None
        while True:
            if self._is_shutdown:
                raise QueueShutDown
            # Full: wait for a get() (or shutdown) to wake us, then re-check.
            loop = self._loop
            if self._native and loop._thread_id == get_ident():
                putter = loop.create_future()
            else:
                putter = self._new_waiter()
            self._putters.append(putter)
            try:
                await putter
            except BaseException:
                self._drop_waiter(putter, self._putters, self.full)
                raise
            maxsize = self._maxsize
            if maxsize <= 0 or not len(self._queue) >= maxsize:
                return self.put_nowait(item)

    async def _wait_routed(self, waiters: deque[Any], blocked: Callable[[], bool]) -> None:
        # One wait of the routed put() (get()): *waiters* is the putters
        # (getters) deque, *blocked* is full (empty).
        waiter = self._new_waiter()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            self._drop_waiter(waiter, waiters, blocked)
            raise

    def _drop_waiter(self, waiter: Any, waiters: deque[Any], blocked: Callable[[], bool]) -> None:
        # put() (get()) failed, typically cancelled, while waiting on *waiter*.
        waiter.cancel()  # in case it is still pending
        try:
            waiters.remove(waiter)
        except ValueError:
            pass  # already taken off by get_nowait() (put_nowait()) or shutdown()
        if not blocked() and not waiter.cancelled():
            # Woken, but we will not use the room (item): pass the wakeup on.
            self._wakeup_next(waiters)

    async def _put_routed(self, item: _T) -> None:
        # put() exactly as asyncio does it, for subclasses that override
        # the methods it goes through.
        while self.full():
            if self._is_shutdown:
                raise QueueShutDown
            await self._wait_routed(self._putters, self.full)
        return self.put_nowait(item)

    def put_nowait(self, item: _T) -> None:
        """Put *item* in the queue if there is room, else raise QueueFull."""
        if self._is_shutdown:
            raise QueueShutDown
        if self.full():
            raise QueueFull
        self._put(item)
        self._unfinished_tasks += 1
        self._finished.clear()
        self._wakeup_next(self._getters)

    async def get(self) -> _T:
        """Remove and return an item, waiting while the queue is empty."""
        if not self._standard:
            return await self._get_routed()
        if self._queue:
            # An item is there: the whole of get_nowait(), inline.
            item: _T = self._queue.popleft() if self._deque else self._get()
            if self._putters:
                _wakeup_next(self._putters)
            return item
        while True:
            if self._is_shutdown:
                raise QueueShutDown
            # Empty: wait for a put() (or shutdown) to wake us, then re-check.
            loop = self._loop
            if self._native and loop._thread_id == get_ident():
                getter = loop.create_future()
            else:
                getter = self._new_waiter()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                self._drop_waiter(getter, self._getters, self.empty)
                raise
            if self._queue:
                return self.get_nowait()

    async def _get_routed(self) -> _T:
        # get() exactly as asyncio does it (see _put_routed).
        while self.empty():
            if self._is_shutdown and self.empty():
                raise QueueShutDown
            await self._wait_routed(self._getters, self.empty)
        return self.get_nowait()

    def get_nowait(self) -> _T:
        """Remove and return an item if one is there, else raise QueueEmpty."""
        if self.empty():
            if self._is_shutdown:
                raise QueueShutDown
            raise QueueEmpty
        item = self._get()
        self._wakeup_next(self._putters)
        return item

    def task_done(self) -> None:
        """Mark one item taken with ``get()`` as processed (see ``join()``).

        ValueError if called more times than items were put.
        """
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put has been marked done with ``task_done()``."""
        if self._unfinished_tasks > 0:
            await self._finished.wait()

    if sys.version_info >= (3, 13):

        def shutdown(self, immediate: bool = False) -> None:
            """Shut the queue down: ``put()`` raises QueueShutDown from now on.

            ``get()`` raises it once the queue is empty, or at once if
            *immediate* (the remaining items are then dropped and counted as
            done).  Blocked ``put()`` and ``get()`` calls are woken.
            """
            self._is_shutdown = True
            if immediate:
                while not self.empty():
                    self._get()
                    if self._unfinished_tasks > 0:
                        self._unfinished_tasks -= 1
                if self._unfinished_tasks == 0:
                    self._finished.set()
            # Every blocked get() re-checks and raises if the queue is empty.
            getters = self._getters
            while getters:
                getter = getters.popleft()
                if not getter.done():
                    getter.set_result(None)
            putters = self._putters
            while putters:
                putter = putters.popleft()
                if not putter.done():
                    putter.set_result(None)


def _overrides(cls: type, names: tuple[str, ...]) -> bool:
    return any(getattr(cls, name) is not getattr(Queue, name) for name in names)


class PriorityQueue(Queue[_T]):
    """A Queue that returns the smallest item first (a heap).

    Items are typically ``(priority, data)`` tuples.
    """

    __slots__ = ()

    def _init(self, maxsize: int) -> None:
        self._queue = []

    def _put(self, item: _T, heappush: Any = heapq.heappush) -> None:
        heappush(self._queue, item)

    def _get(self, heappop: Any = heapq.heappop) -> _T:
        item: _T = heappop(self._queue)
        return item


class LifoQueue(Queue[_T]):
    """A Queue that returns the most recently added item first (a stack)."""

    __slots__ = ()

    def _init(self, maxsize: int) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _get(self) -> _T:
        item: _T = self._queue.pop()
        return item

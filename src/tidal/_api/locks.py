"""Synchronization primitives: Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier.

They behave exactly as asyncio's do on the running Python version: FIFO
wakeups, the same hand-over of a wakeup when a woken waiter is cancelled,
the same reprs and error messages.  A blocked task awaits a future of the
bound loop; a primitive that does not have to block touches no future at all.

``async with`` on a Lock or Semaphore takes the uncontended path inline
unless a subclass overrides ``acquire``, ``release`` (or ``locked``), in
which case the override is called exactly as asyncio would call it.
"""

from __future__ import annotations

import sys
from asyncio import BrokenBarrierError, CancelledError
from collections import deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar

from tidal._api._loopbound import LoopBound, get_ident

__all__ = (
    "Lock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier",
    "BrokenBarrierError",
)

_T = TypeVar("_T")
# 3.13 reworked Semaphore.acquire's hand-over of slots (CPython gh-90155).
_PY313 = sys.version_info >= (3, 13)


def _overrides(cls: type, base: type, names: tuple[str, ...]) -> bool:
    """True if *cls* replaces any of *base*'s methods *names*."""
    return any(getattr(cls, name) is not getattr(base, name) for name in names)



def _state_repr(base: str, state: str, waiters: Any) -> str:
    """``<... object at 0x... [state, waiters:N]>``, asyncio's shape for its primitives."""
    if waiters:
        state = f"{state}, waiters:{len(waiters)}"
    return f"<{base[1:-1]} [{state}]>"

class Lock(LoopBound):
    """A mutual-exclusion lock for tasks, not owned by the task that took it.

    ``acquire()`` blocks until the lock is free, then takes it; ``release()``
    frees it and lets the longest-waiting task proceed (FIFO).  Use it as
    ``async with lock: ...``.
    """

    __slots__ = ("_waiters", "_locked")

    #: False in subclasses that override acquire() (release()): ``async
    #: with`` then calls the override, as asyncio's does.
    _inline_acquire: ClassVar[bool] = True
    _inline_release: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._inline_acquire = not _overrides(cls, Lock, ("acquire",))
        cls._inline_release = not _overrides(cls, Lock, ("release",))

    def __init__(self) -> None:
        LoopBound.__init__(self)
        self._waiters: deque[Any] | None = None
        self._locked: bool = False

    def __repr__(self) -> str:
        state = "locked" if self._locked else "unlocked"
        return _state_repr(super().__repr__(), state, self._waiters)

    async def __aenter__(self) -> None:
        if self._inline_acquire and not self._locked and not self._waiters:
            self._locked = True
            return None
        await self.acquire()
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inline_release and self._locked and not self._waiters:
            self._locked = False
            return None
        self.release()
        return None

    def locked(self) -> bool:
        """True if the lock is held."""
        return self._locked

    async def acquire(self) -> Literal[True]:
        """Take the lock, waiting (in FIFO order) while another task holds it."""
        waiters = self._waiters
        # Fairness: a free lock still goes to the waiters first, unless every
        # one of them has been cancelled.
        if not self._locked and (not waiters or all(w.cancelled() for w in waiters)):
            self._locked = True
            return True
        if waiters is None:
            waiters = self._waiters = deque()
        loop = self._loop
        if self._native and loop._thread_id == get_ident():
            fut = loop.create_future()
        else:
            fut = self._new_waiter()
        waiters.append(fut)
        try:
            try:
                await fut
            finally:
                waiters.remove(fut)
        except CancelledError:
            # Woken and cancelled before running: pass the wakeup on.
            if not self._locked:
                self._wake_up_first()
            raise
        self._locked = True
        return True

    def release(self) -> None:
        """Free the lock and wake the first waiter; RuntimeError if not held."""
        if self._locked:
            self._locked = False
            waiters = self._waiters
            if waiters:
                fut = waiters[0]
                if not fut.done():
                    fut.set_result(True)
        else:
            raise RuntimeError("Lock is not acquired.")

    def _wake_up_first(self) -> None:
        # A done head waiter is already on its way: it takes the lock or, if
        # cancelled, comes back here to wake the next one.
        waiters = self._waiters
        if waiters:
            fut = waiters[0]
            if not fut.done():
                fut.set_result(True)


class Event(LoopBound):
    """A flag tasks can wait for: ``wait()`` blocks until ``set()`` is called."""

    __slots__ = ("_waiters", "_value")

    def __init__(self) -> None:
        LoopBound.__init__(self)
        self._waiters: deque[Any] = deque()
        self._value: bool = False

    def __repr__(self) -> str:
        return _state_repr(super().__repr__(), "set" if self._value else "unset", self._waiters)

    def is_set(self) -> bool:
        """True if the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiting task."""
        if not self._value:
            self._value = True
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(True)

    def clear(self) -> None:
        """Reset the flag: later ``wait()`` calls block until the next ``set()``."""
        self._value = False

    async def wait(self) -> Literal[True]:
        """Return True at once if the flag is set, else once ``set()`` is called."""
        if self._value:
            return True
        loop = self._loop
        if self._native and loop._thread_id == get_ident():
            fut = loop.create_future()
        else:
            fut = self._new_waiter()
        waiters = self._waiters
        waiters.append(fut)
        try:
            await fut
            return True
        finally:
            waiters.remove(fut)


class Condition(LoopBound):
    """A condition variable: tasks wait until another task notifies them.

    It works over a Lock (a new one unless *lock* is given), whose
    ``locked()``, ``acquire()`` and ``release()`` it exports.
    """

    __slots__ = ("_lock", "locked", "acquire", "release", "_waiters")

    def __init__(self, lock: Any = None) -> None:
        LoopBound.__init__(self)
        if lock is None:
            lock = Lock()
        self._lock: Any = lock
        self.locked: Callable[[], bool] = lock.locked
        self.acquire: Callable[[], Coroutine[Any, Any, Any]] = lock.acquire
        self.release: Callable[[], None] = lock.release
        self._waiters: deque[Any] = deque()

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return _state_repr(super().__repr__(), state, self._waiters)

    async def __aenter__(self) -> None:
        await self.acquire()
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    if sys.version_info >= (3, 13):

        async def wait(self) -> Literal[True]:
            """Release the lock, wait to be notified, re-acquire the lock.

            The lock is re-acquired even if the wait is cancelled.  Wakeups
            may be spurious: re-check the state after it returns.
            """
            if not self.locked():
                raise RuntimeError("cannot wait on un-acquired lock")
            fut = self._new_waiter()
            self.release()
            try:
                try:
                    self._waiters.append(fut)
                    try:
                        await fut
                        return True
                    finally:
                        self._waiters.remove(fut)
                finally:
                    await self._reacquire()
            except BaseException:
                # We may have been notified before failing: hand the
                # notification to another waiter (a spurious wakeup at worst).
                self._notify(1)
                raise

        async def _reacquire(self) -> None:
            # Retry until the lock is ours; re-raise the last CancelledError.
            err: CancelledError | None = None
            while True:
                try:
                    await self.acquire()
                    break
                except CancelledError as e:
                    err = e
            if err is not None:
                try:
                    raise err
                finally:
                    err = None  # no reference cycle through the traceback

    else:

        async def wait(self) -> Literal[True]:
            """Release the lock, wait to be notified, re-acquire the lock.

            The lock is re-acquired even if the wait is cancelled.
            """
            if not self.locked():
                raise RuntimeError("cannot wait on un-acquired lock")
            self.release()
            try:
                fut = self._new_waiter()
                self._waiters.append(fut)
                try:
                    await fut
                    return True
                finally:
                    self._waiters.remove(fut)
            finally:
                await self._reacquire()

        async def _reacquire(self) -> None:
            # Retry until the lock is ours; a cancellation on the way is
            # reported as a fresh CancelledError, as asyncio does here.
            cancelled = False
            while True:
                try:
                    await self.acquire()
                    break
                except CancelledError:
                    cancelled = True
            if cancelled:
                raise CancelledError

    async def wait_for(self, predicate: Callable[[], _T]) -> _T:
        """``wait()`` until ``predicate()`` is true; return its last value."""
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to *n* waiting tasks; the lock must be held."""
        if not self.locked():
            raise RuntimeError("cannot notify on un-acquired lock")
        self._notify(n)

    def _notify(self, n: int) -> None:
        idx = 0
        for fut in self._waiters:
            if idx >= n:
                break
            if not fut.done():
                idx += 1
                fut.set_result(False)

    def notify_all(self) -> None:
        """Wake every waiting task; the lock must be held."""
        self.notify(len(self._waiters))


class Semaphore(LoopBound):
    """A counter of free slots: ``acquire()`` takes one, ``release()`` returns one.

    ``acquire()`` blocks while the counter is zero; waiters are served FIFO.
    """

    __slots__ = ("_waiters", "_value")

    #: False in subclasses that override acquire() or locked() (release(),
    #: as BoundedSemaphore does): ``async with`` then calls them.
    _inline_acquire: ClassVar[bool] = True
    _inline_release: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._inline_acquire = not _overrides(cls, Semaphore, ("acquire", "locked"))
        cls._inline_release = not _overrides(cls, Semaphore, ("release",))

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        LoopBound.__init__(self)
        self._waiters: deque[Any] | None = None
        self._value: int = value

    def __repr__(self) -> str:
        state = "locked" if self.locked() else f"unlocked, value:{self._value}"
        return _state_repr(super().__repr__(), state, self._waiters)

    async def __aenter__(self) -> None:
        if self._inline_acquire and self._value != 0 and not self._waiters:
            self._value -= 1
            return None
        await self.acquire()
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inline_release and not self._waiters:
            self._value += 1
            return None
        self.release()
        return None

    def locked(self) -> bool:
        """True if ``acquire()`` would block (no slot, or earlier waiters)."""
        return self._value == 0 or any(not w.cancelled() for w in (self._waiters or ()))

    async def acquire(self) -> Literal[True]:
        """Take a slot, waiting (FIFO) while none is free."""
        if not self.locked():
            self._value -= 1
            return True
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = deque()
        loop = self._loop
        if self._native and loop._thread_id == get_ident():
            fut = loop.create_future()
        else:
            fut = self._new_waiter()
        waiters.append(fut)
        if _PY313:
            try:
                try:
                    await fut
                finally:
                    waiters.remove(fut)
            except CancelledError:
                if fut.done() and not fut.cancelled():
                    # _wake_up_next() gave us a slot we will not use: give
                    # it back (the finally clause hands it on).
                    self._value += 1
                raise
            finally:
                # Tasks that queued up behind us may now proceed.
                while self._value > 0:
                    if not self._wake_up_next():
                        break
            return True
        try:
            try:
                await fut
            finally:
                waiters.remove(fut)
        except CancelledError:
            if not fut.cancelled():
                # Woken, then cancelled: return the slot and hand it on.
                self._value += 1
                self._wake_up_next()
            raise
        if self._value > 0:
            self._wake_up_next()
        return True

    def release(self) -> None:
        """Return a slot, waking the first waiting task if there is one."""
        self._value += 1
        self._wake_up_next()

    def _wake_up_next(self) -> bool:
        # Give a slot to the first waiter that is not already woken/cancelled.
        waiters = self._waiters
        if not waiters:
            return False
        for fut in waiters:
            if not fut.done():
                self._value -= 1
                fut.set_result(True)
                return True
        return False


class BoundedSemaphore(Semaphore):
    """A Semaphore whose ``release()`` refuses to exceed the initial value."""

    __slots__ = ("_bound_value",)

    def __init__(self, value: int = 1) -> None:
        self._bound_value: int = value
        super().__init__(value)

    def release(self) -> None:
        """Return a slot; ValueError if that would exceed the initial value."""
        if self._value >= self._bound_value:
            raise ValueError("BoundedSemaphore released too many times")
        super().release()



# Barrier states; the strings are what its repr shows.
_FILLING = "filling"
_DRAINING = "draining"
_RESETTING = "resetting"
_BROKEN = "broken"


class Barrier(LoopBound):
    """Lets a fixed number of tasks (*parties*) wait for each other.

    ``wait()`` blocks until *parties* tasks are waiting, then releases them
    all; each gets a distinct index in ``range(parties)``.  ``reset()`` and
    ``abort()`` make waiting tasks raise BrokenBarrierError.
    """

    __slots__ = ("_cond", "_parties", "_state", "_count")

    def __init__(self, parties: int) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        LoopBound.__init__(self)
        self._cond: Condition = Condition()  # notified on every state change
        self._parties: int = parties
        self._state: str = _FILLING
        self._count: int = 0  # tasks inside wait()

    def __repr__(self) -> str:
        res = super().__repr__()
        extra = self._state
        if not self.broken:
            extra += f", waiters:{self.n_waiting}/{self.parties}"
        return f"<{res[1:-1]} [{extra}]>"

    async def __aenter__(self) -> int:
        return await self.wait()

    async def __aexit__(self, *args: object) -> None:
        pass

    async def wait(self) -> int:
        """Wait until *parties* tasks wait; return this task's index."""
        cond = self._cond
        async with cond:
            # Let a previous round drain (or a reset finish) first.
            await cond.wait_for(self._not_busy)
            if self._state is _BROKEN:
                raise BrokenBarrierError("Barrier aborted")
            try:
                index = self._count
                self._count += 1
                if index + 1 == self._parties:
                    # The last party: release everyone.
                    self._state = _DRAINING
                    cond.notify_all()
                else:
                    await cond.wait_for(self._not_filling)
                    if self._state is _BROKEN or self._state is _RESETTING:
                        raise BrokenBarrierError("Abort or reset of barrier")
                return index
            finally:
                self._count -= 1
                self._exit()

    def _not_busy(self) -> bool:
        return self._state is not _DRAINING and self._state is not _RESETTING

    def _not_filling(self) -> bool:
        return self._state is not _FILLING

    def _exit(self) -> None:
        # The last task out ends a drain or a reset and wakes those blocked.
        if self._count == 0:
            if self._state is _RESETTING or self._state is _DRAINING:
                self._state = _FILLING
            self._cond.notify_all()

    async def reset(self) -> None:
        """Return to the empty state; tasks waiting now get BrokenBarrierError."""
        async with self._cond:
            if self._count > 0:
                self._state = _RESETTING
            else:
                self._state = _FILLING
            self._cond.notify_all()

    async def abort(self) -> None:
        """Break the barrier: current and future ``wait()`` calls raise BrokenBarrierError."""
        async with self._cond:
            self._state = _BROKEN
            self._cond.notify_all()

    @property
    def parties(self) -> int:
        """How many tasks must wait for the barrier to trip."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """How many tasks are waiting while the barrier fills."""
        if self._state is _FILLING:
            return self._count
        return 0

    @property
    def broken(self) -> bool:
        """True once the barrier has been aborted."""
        return self._state is _BROKEN

"""FutureTimer: the TimerHandle of asyncio's ``sleep()``, in a third of the memory.

asyncio's ``sleep()`` (the one an unchanged asyncio program calls on tidal's
loop) does ``loop.call_later(delay, futures._set_result_unless_cancelled,
future, result)``. A TimerHandle for that costs 232 B per sleeper on 3.11:
the handle (112 B), the copied context (64 B) and the argument tuple (56 B).
For exactly that callback, on a tidal future, outside debug mode, ``call_at``
makes a FutureTimer instead: 80 B, with the same observable API (``when()``,
``cancel()``, ``cancelled()``, ``get_context()``, comparisons, hash, repr,
``isinstance(h, TimerHandle)``, weak references).

Why skipping the context copy is safe: the callback is asyncio's own helper,
which reads no context variable, and a tidal future schedules its callbacks
with contexts of their own, so the context it runs in cannot be observed.
``get_context()`` copies the caller's context the first time it is asked and
keeps that copy (in a side table: the slot is what every sleeper would pay).
"""

from __future__ import annotations

import contextvars
import functools
import weakref
from asyncio import futures as _aio_futures
from typing import Any

from tidal._core.format import format_callback_source
from tidal._core.futures import _CANCELLED
from tidal._core.handles import _TimerHandle

#: The callback asyncio's sleep() schedules, by identity.
SET_RESULT_UNLESS_CANCELLED: Any = getattr(_aio_futures, "_set_result_unless_cancelled", None)

#: get_context()'s copies, by id(timer), dropped when the timer is freed.
_contexts: dict[int, tuple[Any, contextvars.Context]] = {}


def _forget_context(ref: Any, key: int) -> None:
    entry = _contexts.get(key)
    if entry is not None and entry[0] is ref:
        del _contexts[key]


class FutureTimer:
    """``TimerHandle(when, _set_result_unless_cancelled, (fut, result), loop)``, lean.

    Cancelled means ``_fut is None`` (cancel() drops the future and the
    result, as a Handle drops its callback and arguments).
    """

    __slots__ = ("_fut", "_result", "_when", "_loop", "_scheduled", "__weakref__")

    def __init__(self, when: float, fut: Any, result: Any, loop: Any) -> None:
        self._fut: Any = fut
        self._result: Any = result
        self._when: float = when
        self._loop: Any = loop
        self._scheduled: bool = False

    # Reported as TimerHandle, as Future reports asyncio.Future: isinstance()
    # consults __class__, and the repr prints its name.
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return _TimerHandle

    @property
    def _cancelled(self) -> bool:
        return self._fut is None

    @property
    def _callback(self) -> Any:
        return None if self._fut is None else SET_RESULT_UNLESS_CANCELLED

    @property
    def _args(self) -> tuple[Any, ...] | None:
        fut = self._fut
        return None if fut is None else (fut, self._result)

    @property
    def _context(self) -> contextvars.Context:
        return self.get_context()

    @property
    def _source_traceback(self) -> None:
        return None  # made outside debug mode only

    def get_context(self) -> contextvars.Context:
        """The context the callback runs in (see the module docstring)."""
        key = id(self)
        entry = _contexts.get(key)
        if entry is not None and entry[0]() is self:
            return entry[1]
        context = contextvars.copy_context()
        ref = weakref.ref(self, functools.partial(_forget_context, key=key))
        _contexts[key] = (ref, context)
        return context

    def when(self) -> float:
        """The absolute ``loop.time()`` at which the callback is due."""
        return self._when

    def cancelled(self) -> bool:
        """True if the timer was cancelled."""
        return self._fut is None

    def cancel(self) -> None:
        """Cancel the timer; the loop drops it from its heap lazily."""
        if self._fut is not None:
            self._loop._timer_handle_cancelled(self)
            self._fut = None
            self._result = None

    def _run(self) -> None:
        fut = self._fut
        if fut is None or fut._state is _CANCELLED:
            return
        try:
            fut.set_result(self._result)  # raises if someone else completed it
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            source = format_callback_source(
                SET_RESULT_UNLESS_CANCELLED, (fut, self._result), self._loop.get_debug()
            )
            self._loop.call_exception_handler({
                "message": f"Exception in callback {source}",
                "exception": exc,
                "handle": self,
            })

    def __repr__(self) -> str:
        info = ["TimerHandle"]
        fut = self._fut
        if fut is None:
            info.append("cancelled")
        info.append(f"when={self._when}")
        if fut is not None:
            info.append(format_callback_source(
                SET_RESULT_UNLESS_CANCELLED, (fut, self._result), self._loop.get_debug()
            ))
        return "<{}>".format(" ".join(info))

    # TimerHandle's comparisons, which also accept this class (a compiled
    # TimerHandle's isinstance() does not consult __class__).
    def __hash__(self) -> int:
        return hash(self._when)

    def __lt__(self, other: object) -> bool:
        if _is_timer(other):
            o: Any = other
            return bool(self._when < o._when)
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if _is_timer(other):
            o: Any = other
            return bool(self._when < o._when or self.__eq__(other))
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if _is_timer(other):
            o: Any = other
            return bool(self._when > o._when)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if _is_timer(other):
            o: Any = other
            return bool(self._when > o._when or self.__eq__(other))
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if _is_timer(other):
            o: Any = other
            return bool(
                self._when == o._when
                and self._callback == o._callback
                and self._args == o._args
                and self._cancelled == o._cancelled
            )
        return NotImplemented


def _is_timer(obj: object) -> bool:
    return isinstance(obj, _TimerHandle) or type(obj) is FutureTimer

"""``sleep``: the simplest way to block, and the hottest."""

from __future__ import annotations

import heapq
import math
import sys
import types
from collections.abc import Generator
from typing import Any, TypeVar, overload

from tidal._core import _aio
from tidal._core.futures import _CANCELLED, _PENDING
from tidal._core.handles import Handle
from tidal._core.loop import BaseEventLoop

__all__ = ("sleep",)

_T = TypeVar("_T")
_NAN_CHECK = sys.version_info >= (3, 13)
_heappush = heapq.heappush


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    # A bare yield: the task goes to the back of the ready queue.
    yield


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


class _SleepTimer:
    """A timer-heap entry that completes a sleep's future when it is due.

    It stands in for what asyncio's sleep schedules, a TimerHandle of
    ``_set_result_unless_cancelled(future, result)``, without the handle's
    copied context, argument tuple and seven other slots. The loop treats it
    as it treats a TimerHandle: it reads ``_cancelled``, clears ``_scheduled``
    when it takes the entry off the heap, and calls ``_run()``.
    """

    __slots__ = ("_fut", "_result", "_cancelled", "_scheduled")

    def __init__(self, fut: Any, result: Any) -> None:
        self._fut: Any = fut
        self._result: Any = result
        self._cancelled: bool = False
        self._scheduled: bool = True

    # On an exact tie of deadlines the heap compares the entries themselves;
    # the order among equal deadlines is arbitrary (as with TimerHandle), so
    # an entry is never "less" than another, nor than a TimerHandle.
    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return False

    def _run(self) -> None:
        if self._cancelled:
            return
        fut = self._fut
        state = fut._state
        if state is _PENDING:
            fut.set_result(self._result)
        elif state is not _CANCELLED:
            # Someone else completed the future: report the error exactly as
            # asyncio's handle would.
            handle = Handle(_set_result_unless_cancelled, (fut, self._result), fut._loop)
            handle._run()


#: Loop classes on which sleep() may push its own timer entry: tidal loops
#: that keep the core's create_future, call_at, call_later and timer accounting.
_fast_loops: set[type] = set()
_slow_loops: set[type] = set()
_CORE_METHODS = ("create_future", "call_at", "call_later", "_timer_handle_cancelled")


def _is_fast_loop(cls: type) -> bool:
    if cls in _slow_loops:
        return False
    fast = issubclass(cls, BaseEventLoop) and all(
        getattr(cls, name) is getattr(BaseEventLoop, name) for name in _CORE_METHODS
    )
    (_fast_loops if fast else _slow_loops).add(cls)
    return fast


def _future_and_timer(loop: Any, delay: float, result: Any) -> tuple[Any, Any]:
    # asyncio's way, on any loop. A helper, so that sleep()'s frame, which
    # every sleeping task keeps, needs one stack slot less.
    future = loop.create_future()
    return future, loop.call_later(delay, _set_result_unless_cancelled, future, result)


@overload
async def sleep(delay: float) -> None: ...
@overload
async def sleep(delay: float, result: _T) -> _T: ...


async def sleep(delay: float, result: Any = None) -> Any:
    """Suspend the current task for *delay* seconds, then return *result*."""
    if delay <= 0:
        await _yield_once()
        return result
    if _NAN_CHECK and math.isnan(delay):
        raise ValueError("Invalid delay: NaN (not a number)")
    loop = _aio.get_running_loop_or_none()
    if loop is None:
        raise RuntimeError("no running event loop")
    entry: Any  # one local for both paths' timer: every sleeping task keeps the frame
    if (
        (loop.__class__ in _fast_loops or _is_fast_loop(loop.__class__))
        and not loop._debug
        # Patched on the instance: asyncio calls it (LoopBase._tidal_attrs).
        and "call_later" not in loop._tidal_attrs
        and "call_at" not in loop._tidal_attrs
    ):
        # What call_later() would do, minus the TimerHandle (see _SleepTimer).
        future = loop.create_future()
        entry = _SleepTimer(future, result)
        _heappush(loop._scheduled, (loop.time() + delay, entry))
        try:
            return await future
        finally:
            if entry._scheduled:  # still on the heap: cancelled before it was due
                entry._cancelled = True
                entry._fut = entry._result = None
                loop._timer_cancelled_count += 1
    future, entry = _future_and_timer(loop, delay, result)  # entry: the TimerHandle
    try:
        return await future
    finally:
        entry.cancel()

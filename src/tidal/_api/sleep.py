"""``sleep``: the simplest way to block, and the hottest."""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Generator
from typing import Any, TypeVar

from tidal._core import _aio

__all__ = ("sleep",)

_T = TypeVar("_T")
_NAN_CHECK = sys.version_info >= (3, 13)


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    # A bare yield: the task goes to the back of the ready queue.
    yield


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


async def sleep(delay: float, result: _T = None) -> _T:  # type: ignore[assignment]
    """Suspend the current task for *delay* seconds, then return *result*."""
    if delay <= 0:
        await _yield_once()
        return result
    if _NAN_CHECK and math.isnan(delay):
        raise ValueError("Invalid delay: NaN (not a number)")
    loop = _aio.get_running_loop_or_none()
    if loop is None:
        raise RuntimeError("no running event loop")
    future = loop.create_future()
    timer = loop.call_later(delay, _set_result_unless_cancelled, future, result)
    try:
        return await future  # type: ignore[no-any-return]
    finally:
        timer.cancel()

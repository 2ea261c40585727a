"""Crossing between the loop and threads: ``to_thread`` and ``run_coroutine_threadsafe``."""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from tidal._core.bridge import chain_future
from tidal._core.events import get_running_loop
from tidal._core.tasks import ensure_future, iscoroutine

__all__ = ("run_coroutine_threadsafe", "to_thread")

_T = TypeVar("_T")


async def to_thread(func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Run ``func(*args, **kwargs)`` in the default executor and await its result.

    The current context is copied into the thread, so context variables set
    in the calling task are visible to *func*.
    """
    loop = get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    result: _T = await loop.run_in_executor(None, call)
    return result


def run_coroutine_threadsafe(coro: Any, loop: Any) -> concurrent.futures.Future[Any]:
    """Schedule *coro* on *loop* from another thread; a concurrent.futures.Future.

    The returned future gets the coroutine's result; cancelling it cancels
    the task running the coroutine.
    """
    if not iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def callback() -> None:
        # Runs in the loop's thread.
        try:
            chain_future(ensure_future(coro, loop=loop), future)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
            raise  # and let the loop report it too

    loop.call_soon_threadsafe(callback)
    return future

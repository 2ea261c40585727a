"""Loop binding for the synchronization primitives and queues.

A primitive is created outside any loop and binds to the running loop the
first time it has to block, as asyncio's primitives do.  Using it later from
another loop raises ``RuntimeError('<repr> is bound to a different event
loop')``.

Hot paths make their waiter future as::

    loop = self._loop
    if self._native and loop._thread_id == get_ident():
        fut = loop.create_future()
    else:
        fut = self._new_waiter()

(``create_future()`` of a tidal loop, not ``Future(loop=loop)``: it skips
the class call and ``__init__``, 0.38 against 0.72 us in the pure build.)

A tidal loop records the thread it runs in (``_thread_id``) for exactly as
long as it is the running loop of that thread, and a thread runs one loop at
a time; so a match proves that the bound loop is the running one, which is
all asyncio's check establishes.  It is cheap where asking for the running
loop is not: on 3.11 that lookup makes a ``getpid()`` system call.  Anything
else (first use, foreign loops, a call from the wrong loop or thread) goes
through :meth:`LoopBound._new_waiter`: asyncio's full check, then the loop's
``create_future()``.
"""

from __future__ import annotations

import threading
from typing import Any

from tidal._core import _aio
from tidal._core.loop import BaseEventLoop

__all__ = ("LoopBound", "get_ident", "running_loop")

#: The running loop of this thread, or None (a C function).
running_loop = _aio.get_running_loop_or_none
#: This thread's identifier, as tidal loops record it in ``_thread_id``.
get_ident = threading.get_ident

# Two threads may race to bind the same object; the first one wins.
_bind_lock = threading.Lock()


def _makes_tidal_futures(loop: Any) -> bool:
    # A tidal loop whose create_future() is tidal's own (not overridden on
    # its class or on the instance): its waiters need no running-loop check.
    return (
        isinstance(loop, BaseEventLoop)
        and type(loop).create_future is BaseEventLoop.create_future
        and "create_future" not in getattr(loop, "__dict__", ())
    )


class LoopBound:
    """Base of every primitive: the loop it is bound to, set on first use."""

    __slots__ = ("_loop", "_native", "__weakref__")

    def __init__(self) -> None:
        self._loop: Any = None
        # True once bound to a tidal loop: waiters skip the running-loop check.
        self._native: bool = False

    def _bind(self, loop: Any) -> None:
        # Called only when *loop* (the running loop) is not the bound one.
        if self._loop is None:
            with _bind_lock:
                if self._loop is None:
                    self._loop = loop
                    self._native = _makes_tidal_futures(loop)
        if loop is not self._loop:
            raise RuntimeError(f"{self!r} is bound to a different event loop")

    def _get_loop(self) -> Any:
        """The running loop, after checking that it is the bound one."""
        loop = running_loop()
        if loop is not self._loop:
            self._bind(loop)
        return loop

    def _new_waiter(self) -> Any:
        """A new future of the running loop, binding to it or checking it."""
        loop = self._get_loop()
        return loop.create_future()

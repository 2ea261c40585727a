"""Loop binding for the synchronization primitives and queues.

A primitive is created outside any loop and binds to the running loop the
first time it has to block, as asyncio's primitives do.  Using it later from
another loop raises ``RuntimeError('<repr> is bound to a different event
loop')``.

Hot paths inline the check as ``loop = _running_loop(); if loop is not
self._loop: self._bind(loop)``: one C call and one identity test.  They then
make the waiter future with :func:`Future` directly when the bound loop is a
tidal loop (``_native``), skipping ``create_future()``; any other loop gets
its own ``create_future()``.
"""

from __future__ import annotations

import threading
from typing import Any

from tidal._core import _aio

__all__ = ("LoopBound", "running_loop")

#: The running loop of this thread, or None (a C function).
running_loop = _aio.get_running_loop_or_none

# Two threads may race to bind the same object; the first one wins.
_bind_lock = threading.Lock()


class LoopBound:
    """Base of every primitive: the loop it is bound to, set on first use."""

    __slots__ = ("_loop", "_native", "__weakref__")

    def __init__(self) -> None:
        self._loop: Any = None
        # True once bound to a tidal loop: waiter futures are built directly.
        self._native: bool = False

    def _bind(self, loop: Any) -> None:
        # Called only when *loop* (the running loop) is not the bound one.
        if self._loop is None:
            with _bind_lock:
                if self._loop is None:
                    self._loop = loop
                    self._native = getattr(loop, "_tidal_ready", None) is not None
        if loop is not self._loop:
            raise RuntimeError(f"{self!r} is bound to a different event loop")

    def _get_loop(self) -> Any:
        """The running loop, after checking that it is the bound one."""
        loop = running_loop()
        if loop is not self._loop:
            self._bind(loop)
        return loop

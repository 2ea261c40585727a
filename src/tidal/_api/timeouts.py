"""``timeout`` / ``timeout_at``: cancel a block of code that runs past a deadline.

When the deadline passes, the enclosing task is cancelled; on the way out of
the block the cancellation is withdrawn (``Task.uncancel()``) and turned into
``TimeoutError`` -- unless someone else also cancelled the task meanwhile, in
which case the CancelledError keeps propagating.

Version differences followed here:

* 3.11/3.12 convert only an exact ``CancelledError`` into ``TimeoutError``;
* 3.13 converts any CancelledError subclass, and when the block exits with
  another exception it slips a ``TimeoutError`` into that exception's context
  chain, just above the CancelledError.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import sys
from asyncio import CancelledError
from types import TracebackType
from typing import Any, final

from tidal._core.events import get_running_loop
from tidal._core.tasks import current_task

__all__ = ("Timeout", "timeout", "timeout_at")

_PY313 = sys.version_info >= (3, 13)

# The states, spelled as asyncio's repr spells them.
_CREATED = "created"
_ENTERED = "active"
_EXPIRING = "expiring"
_EXPIRED = "expired"
_EXITED = "finished"


@final
class Timeout:
    """Async context manager cancelling its block at a loop-time deadline.

    Use :func:`timeout` or :func:`timeout_at` rather than instantiating it.
    """

    __slots__ = ("_state", "_timeout_handler", "_task", "_when", "_cancelling")

    def __init__(self, when: float | None) -> None:
        """Expire at loop time *when* (None: never; in the past: on the next turn)."""
        self._state: str = _CREATED
        self._timeout_handler: Any = None
        self._task: Any = None
        self._when: float | None = when
        self._cancelling: int = 0

    def when(self) -> float | None:
        """The current deadline, in loop time, or None."""
        return self._when

    def reschedule(self, when: float | None) -> None:
        """Move the deadline to *when* (None: no deadline)."""
        state = self._state
        if state is not _ENTERED:
            if state is _CREATED:
                raise RuntimeError("Timeout has not been entered")
            raise RuntimeError(f"Cannot change state of {state} Timeout")
        self._when = when
        handler = self._timeout_handler
        if handler is not None:
            handler.cancel()
        if when is None:
            self._timeout_handler = None
            return
        loop = get_running_loop()
        if when <= loop.time():
            self._timeout_handler = loop.call_soon(self._on_timeout)
        else:
            self._timeout_handler = loop.call_at(when, self._on_timeout)

    def expired(self) -> bool:
        """True once the deadline has passed while the block was running."""
        return self._state is _EXPIRING or self._state is _EXPIRED

    def __repr__(self) -> str:
        if self._state is _ENTERED:
            when = None if self._when is None else round(self._when, 3)
            return f"<Timeout [{self._state}] when={when}>"
        return f"<Timeout [{self._state}]>"

    async def __aenter__(self) -> Timeout:
        if self._state is not _CREATED:
            raise RuntimeError("Timeout has already been entered")
        task = current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._state = _ENTERED
        self._task = task
        self._cancelling = task.cancelling()
        self.reschedule(self._when)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        assert self._state is _ENTERED or self._state is _EXPIRING
        handler = self._timeout_handler
        if handler is not None:
            handler.cancel()
            self._timeout_handler = None
        if self._state is _ENTERED:
            self._state = _EXITED
            return None
        self._state = _EXPIRED
        # Withdraw our own cancellation; if no other one is pending, the
        # CancelledError in flight is ours to turn into TimeoutError.
        if self._task.uncancel() > self._cancelling or exc_type is None:
            return None
        if _PY313:
            if issubclass(exc_type, CancelledError):
                raise TimeoutError from exc_val
            if exc_val is not None:
                _insert_timeout_error(exc_val)
                if isinstance(exc_val, ExceptionGroup):
                    for exc in exc_val.exceptions:
                        _insert_timeout_error(exc)
        elif exc_type is CancelledError:
            raise TimeoutError from exc_val
        return None

    def _on_timeout(self) -> None:
        assert self._state is _ENTERED
        self._task.cancel()
        self._state = _EXPIRING
        self._timeout_handler = None  # nothing left to cancel: drop it now


def _insert_timeout_error(exc: BaseException) -> None:
    # 3.13: chain a TimeoutError between *exc*'s context chain and the
    # CancelledError the timeout caused, so tracebacks name the timeout.
    while exc.__context__ is not None:
        context = exc.__context__
        if isinstance(context, CancelledError):
            timeout_error = TimeoutError()
            timeout_error.__context__ = timeout_error.__cause__ = context
            exc.__context__ = timeout_error
            return
        exc = context


def timeout(delay: float | None) -> Timeout:
    """An async context manager that cancels its block after *delay* seconds.

    ``None`` means no deadline (it can be set later with ``reschedule()``).
    The cancellation surfaces as ``TimeoutError`` from the ``async with``.
    """
    loop = get_running_loop()
    return Timeout(None if delay is None else loop.time() + delay)


def timeout_at(when: float | None) -> Timeout:
    """Like :func:`timeout`, with an absolute deadline in ``loop.time()`` terms."""
    return Timeout(when)

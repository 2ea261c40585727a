"""Done-callbacks that tidal's core queues as they are, without a Handle.

A tidal future's callback list may hold, next to ``(callback, context)``
pairs, any object with a ``_run()`` method: on completion the core appends
that object to the ready queue itself and the loop calls ``obj._run()``, in
the very turn a Handle would have run.  :class:`DoneNotice` is such an object
for the high-level API (wait, TaskGroup, as_completed): it calls
``func(owner, future)``.  Compared to ``add_done_callback(owner.method)`` it
saves a bound method, a copied context, a tuple and, at completion, a Handle.

None of these callbacks reads context variables, so running them outside a
copied context is not observable.  Foreign futures (asyncio's, or subclasses
that may override ``add_done_callback``) get an ordinary done-callback.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MethodType
from typing import Any

from tidal._core.format import format_callback, format_callback_source
from tidal._core.futures import _PENDING, Future, add_entry, cb_list
from tidal._core.tasks import Task

__all__ = ("DoneNotice", "add_entry", "listen", "unlisten")


class DoneNotice:
    """Calls ``func(owner, future)`` once *future* is done."""

    __slots__ = ("_func", "_owner", "_future")

    def __init__(self, func: Callable[[Any, Any], None], owner: Any, future: Any) -> None:
        self._func = func
        self._owner = owner
        self._future = future

    def _run(self) -> None:
        try:
            self._func(self._owner, self._future)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # a callback error must not stop the loop
            self._future.get_loop().call_exception_handler({
                "message": "Exception in callback "
                + format_callback_source(self._func, (self._owner, self._future)),
                "exception": exc,
                "future": self._future,
            })

    def _callback_repr(self) -> str:
        # How the future's repr lists this callback: as asyncio lists the
        # bound method it would have registered, e.g. TaskGroup._on_task_done().
        return format_callback(self._func, ())


def listen(func: Callable[[Any, Any], None], owner: Any, future: Any) -> None:
    """Arrange for ``func(owner, future)`` to run, through the loop, once *future* is done."""
    cls = type(future)
    if (cls is Task or cls is Future) and future._state is _PENDING:
        add_entry(future, DoneNotice(func, owner, future))
    else:
        future.add_done_callback(MethodType(func, owner))


def unlisten(func: Callable[[Any, Any], None], owner: Any, future: Any) -> None:
    """Undo :func:`listen` (does nothing if the callback already ran or was queued)."""
    cls = type(future)
    if cls is Task or cls is Future:
        callbacks = cb_list(future._cbs)
        if callbacks:
            kept = [
                cb for cb in callbacks
                if cb.__class__ is not DoneNotice or cb._owner is not owner or cb._func is not func
            ]
            if len(kept) != len(callbacks):
                future._cbs = kept if len(kept) > 1 else (kept[0] if kept else None)
    else:
        future.remove_done_callback(MethodType(func, owner))

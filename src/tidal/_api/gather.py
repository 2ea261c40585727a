"""``gather`` and ``shield``: waiting on many awaitables, and protecting one.

``gather`` is a headline benchmark, so its per-child cost is kept small:

* the outer future is a slotted tidal ``Future`` subclass that keeps its own
  counters (no closure cells, no per-call ``nonlocal`` state);
* a child that is a plain tidal Task or Future gets one tiny ``_ChildDone``
  record appended straight to its callback list.  When the child completes,
  the core puts that record on the ready queue itself (as it does for a
  waiting task) and the loop calls ``record._run()``: the same turn of the
  loop asyncio would run its done-callback in, without a Handle, a copied
  context or a bound method.  Foreign futures use ``add_done_callback``;
* duplicates are looked for once with ``set()``; the ``arg -> future`` dict
  asyncio builds is only made when there are duplicates.

Semantics follow asyncio's ``gather`` exactly, including the running
version's differences (3.12+ completes already-done children synchronously).

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import CancelledError
from types import CoroutineType
from typing import Any

from tidal._api._notify import add_entry
from tidal._core.events import get_event_loop
from tidal._core.format import format_callback, format_callback_source
from tidal._core.futures import _CANCELLED, _FINISHED, _PENDING, NOT_LOGGED, Future
from tidal._core.tasks import Task, _loop_of, ensure_future

__all__ = ("gather", "shield")

# 3.12+ runs the done-callback of children that are already done at once
# (after the outer future exists) instead of scheduling it.
_DONE_CHILDREN_AT_ONCE = sys.version_info >= (3, 12)


_AIO_FUTURE: type = asyncio.Future


class _GatheringFuture(Future):
    """The future ``gather`` returns: cancelling it cancels the children.

    Like ``Task.cancel()``, ``cancel()`` does not mark it cancelled at once:
    it is completed when its children report back.
    """

    __slots__ = (
        "_children", "_cancel_requested", "_nfuts", "_nfinished",
        "_return_exceptions", "_fast", "_done_first",
    )

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        # asyncio's _GatheringFuture is an asyncio.Future: so is this one
        # to isinstance() (see Future.__class__); reprs use type().
        return _AIO_FUTURE

    def __init__(self, children: list[Any], *, loop: Any) -> None:
        assert loop is not None
        Future.__init__(self, loop=loop)
        self._children: list[Any] = children
        self._cancel_requested: bool = False
        #: Number of distinct children; -1 once gather() itself failed.
        self._nfuts: int = 0
        self._nfinished: int = 0
        self._return_exceptions: bool = False
        #: True while every child is a plain tidal Task/Future: their
        #: results can then be read from the slots directly.
        self._fast: bool = True
        #: 3.12+: children found already done, settled once gather() has
        #: hooked up all the others.
        self._done_first: list[Any] | None = None

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the children; the future completes when they report back."""
        if self._state is not _PENDING:
            return False
        ret = False
        for child in self._children:
            if child.cancel(msg=msg):
                ret = True
        if ret:
            # Even with return_exceptions=True the result must then be a
            # cancellation (bpo-32684).
            self._cancel_requested = True
        return ret

    def _child_done(self, fut: Any) -> None:
        """A child completed: asyncio's ``gather.<locals>._done_callback``."""
        self._nfinished += 1
        if self._state is not _PENDING or self._nfuts < 0:
            if not fut.cancelled():
                fut.exception()  # mark it retrieved: the outer result is settled
            return
        if not self._return_exceptions:
            if fut.cancelled():
                self.set_exception(fut._make_cancelled_error())
                return
            exc = fut.exception()
            if exc is not None:
                self.set_exception(exc)
                return
        if self._nfinished == self._nfuts:
            self._finish()

    def _finish(self) -> None:
        # Every child is done and the outer future is still pending.
        children = self._children
        if self._return_exceptions:
            results = [_outcome(fut) for fut in children]
        elif self._cancel_requested:
            results = []  # not used: the outcome is a cancellation
        elif self._fast:
            # Not returning exceptions and still pending: all succeeded.
            results = [fut._result for fut in children]
        else:
            results = [fut.result() for fut in children]
        if self._cancel_requested:
            # asyncio takes the error from the last child in argument order.
            self.set_exception(children[-1]._make_cancelled_error())
        else:
            self.set_result(results)


def _outcome(fut: Any) -> Any:
    # One entry of a return_exceptions=True result list.
    cls = type(fut)
    if cls is Task or cls is Future:
        state = fut._state
        if state is _FINISHED and fut._error is None:
            return fut._result
        if state is not _CANCELLED:
            return fut.exception()
    elif not fut.cancelled():
        exc = fut.exception()
        return fut.result() if exc is None else exc
    # Built fresh, as asyncio does, so no __context__ is chained on.
    msg = fut._cancel_message
    return CancelledError("" if msg is None else msg)


_new = object.__new__


class _ChildDone:
    """A gather child's done-callback, queued by the core without a Handle."""

    __slots__ = ("_outer", "_child")

    def __init__(self, outer: _GatheringFuture, child: Future) -> None:
        self._outer = outer
        self._child = child

    def _run(self) -> None:
        outer = self._outer
        child = self._child
        try:
            if child._state is _FINISHED and child._error is None:
                # The common case, inlined: a child succeeded.
                n = outer._nfinished + 1
                outer._nfinished = n
                if n == outer._nfuts and outer._state is _PENDING:
                    outer._finish()
            else:
                outer._child_done(child)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # never let a callback error stop the loop
            outer._loop.call_exception_handler({
                "message": "Exception in callback "
                + format_callback_source(outer._child_done, (child,)),
                "exception": exc,
                "future": outer,
            })

    def _callback_repr(self) -> str:
        # How the child's repr lists this callback (asyncio shows its closure).
        return format_callback(_GatheringFuture._child_done, ())


def gather(*coros_or_futures: Any, return_exceptions: bool = False) -> Any:
    """Run awaitables concurrently; a future for the list of their results.

    Results are in argument order.  With *return_exceptions*, exceptions are
    returned in the list instead of being raised.  Cancelling the returned
    future cancels every child that is not done yet; a child that is
    cancelled counts as having raised CancelledError.
    """
    nargs = len(coros_or_futures)
    if not nargs:
        empty = get_event_loop().create_future()
        empty.set_result([])
        return empty
    try:
        # Duplicates share one child (as in asyncio); look for them once.
        seen: dict[Any, Any] | None = None if len(set(coros_or_futures)) == nargs else {}
    except TypeError:
        seen = {}  # unhashable: the lookup below raises where asyncio does
    children: list[Any] = []
    outer: Any = None
    loop: Any = None  # the first child's; every other one must share it
    create_task: Any = None
    nfuts = 0
    try:
        for arg in coros_or_futures:
            if seen is None and outer is not None:
                # The hot paths: a plain tidal task/future, or a coroutine.
                cls = type(arg)
                if cls is Task or cls is Future:
                    if arg._loop is not loop:
                        raise ValueError(
                            "The future belongs to a different loop than "
                            "the one specified as the loop argument"
                        )
                    fut = arg
                elif cls is CoroutineType:
                    try:
                        fut = create_task(arg)
                    except RuntimeError:
                        arg.close()
                        raise
                    if type(fut) is Task and fut._rare is None:
                        fut._rare = NOT_LOGGED  # _log_destroy_pending = False, no call
                    else:
                        fut._log_destroy_pending = False
                else:
                    fut = None
                if fut is not None:
                    nfuts += 1
                    children.append(fut)
                    cls = type(fut)
                    if (cls is Task or cls is Future) and fut._state is _PENDING:
                        # add_entry(fut, _ChildDone(outer, fut)), inlined:
                        # two calls less per child is ~5% of a gather.
                        record = _new(_ChildDone)
                        record._outer = outer
                        record._child = fut
                        callbacks = fut._cbs
                        if callbacks is None:
                            fut._cbs = record
                        elif type(callbacks) is list:
                            callbacks.append(record)
                        else:
                            fut._cbs = [callbacks, record]
                    else:
                        _attach(outer, fut)
                    continue
            if seen is not None and arg in seen:
                children.append(seen[arg])
                continue
            fut = ensure_future(arg, loop=loop)
            if fut is not arg:
                # Made here, for an argument the caller cannot reach:
                # no "destroyed but pending" warning for it.
                fut._log_destroy_pending = False
            if outer is None:
                loop = _loop_of(fut)
                create_task = loop.create_task
                outer = _GatheringFuture(children, loop=loop)
                outer._return_exceptions = return_exceptions
            if seen is not None:
                seen[arg] = fut
            nfuts += 1
            children.append(fut)
            _attach(outer, fut)
    except BaseException:
        if outer is not None:
            # Children already hooked up only mark their results retrieved.
            outer._nfuts = -1
        raise
    outer._nfuts = nfuts
    done_first = outer._done_first
    if done_first is not None:
        outer._done_first = None
        child_done = outer._child_done
        for fut in done_first:
            child_done(fut)
    return outer


def _attach(outer: _GatheringFuture, fut: Any) -> None:
    # Hook *fut* up to *outer* (any future, in any state).
    cls = type(fut)
    if cls is Task or cls is Future:
        if fut._state is _PENDING:
            add_entry(fut, _ChildDone(outer, fut))
            return
    else:
        outer._fast = False
        if not _DONE_CHILDREN_AT_ONCE or not fut.done():
            fut.add_done_callback(outer._child_done)
            return
    # Already done: 3.12+ settles it once the outer future is complete.
    if not _DONE_CHILDREN_AT_ONCE:
        outer._loop.call_soon(outer._child_done, fut)
    elif outer._done_first is None:
        outer._done_first = [fut]
    else:
        outer._done_first.append(fut)


def shield(arg: Any) -> Any:
    """Wait for *arg* without letting a cancellation of the waiter reach it.

    The caller is still cancelled (``await shield(x)`` raises
    CancelledError), but the inner task keeps running.  Cancelling the inner
    task by other means does cancel the shield.
    """
    inner = ensure_future(arg)
    if inner.done():
        return inner
    loop = _loop_of(inner)
    outer = loop.create_future()

    def _inner_done_callback(inner: Any) -> None:
        if outer.cancelled():
            if not inner.cancelled():
                inner.exception()  # mark it retrieved: nobody else will
            return
        if inner.cancelled():
            outer.cancel()
        else:
            exc = inner.exception()
            if exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(inner.result())

    def _outer_done_callback(outer: Any) -> None:
        if not inner.done():
            inner.remove_done_callback(_inner_done_callback)

    inner.add_done_callback(_inner_done_callback)
    outer.add_done_callback(_outer_done_callback)
    return outer

"""tidal's Future: asyncio's Future semantics with a direct path for tidal tasks.

A future keeps its done-callbacks in registration order.  An entry is either
a ``(callback, context)`` pair, as in asyncio, or a tidal ``Task`` that is
awaiting this future.  When the future completes, a pair becomes a Handle on
the loop's ready queue and a task is put on the ready queue *itself*: no
bound-method wakeup, no Handle, no second ``result()`` call.  That is the one
way a task blocks in tidal (await a future) and the one way it is woken.

Foreign code sees an ordinary asyncio-style future: ``_asyncio_future_blocking``,
``add_done_callback`` and ``get_loop`` work as asyncio's do, so asyncio's own
Task can await a tidal future and vice versa.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from asyncio import CancelledError, InvalidStateError
from collections import deque
from collections.abc import Callable, Generator
from types import GenericAlias
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, cast

from tidal._core.format import extract_stack, format_callback_source
from tidal._core.handles import Handle, _Handle
from tidal._core.interpreted import exhausted_throw, install, make_future_await
from tidal._core.loopbase import LoopBase, tidal_loop
from tidal._core.native import NativeBase, is_compiled, mypyc_attr
from tidal._core.plumbing import strip_internal_frames

# The constructor's stores without the call (see _schedule_callbacks); the
# class's own __new__, which a compiled class requires (object.__new__ refuses it).
_new_handle: Final[Any] = _Handle.__new__

if TYPE_CHECKING:
    from tidal._core.tasks import Task

__all__ = ("Future", "isfuture")

_T = TypeVar("_T")

# The same strings asyncio uses, so code that peeks at ``_state`` still works.
_PENDING: Final = "PENDING"
_CANCELLED: Final = "CANCELLED"
_FINISHED: Final = "FINISHED"

_copy_context: Final = contextvars.copy_context
#: deque.append as a descriptor: compiled, ``ready.append(x)`` looks the method up by name.
_deque_append: Final = deque.append
_StopIteration: Final = StopIteration
_WRAP_STOPITERATION: Final = sys.version_info >= (3, 13)


#: What ``__class__`` reports for tidal's Future: see Future.__class__.
_AIO_FUTURE: Final[type] = asyncio.Future

# State that few futures ever hold (an exception's traceback, a cancel
# message, debug mode) lives outside the slots: ``_rare`` is None until a
# future needs one of these, then a list indexed by the constants below, made
# by rare(). A parked task is 48 B smaller for it, and smaller than asyncio's
# C Task (docs/design.md, "Memory per parked task"). Nothing on the path of a
# plain cancellation (cancel(), the CancelledError coming out) makes one: the
# CancelledError a task's coroutine raised is kept in _error (see
# _cancelled_exc), which a cancelled future does not otherwise use.
_TB: Final = 0  # set_exception()'s traceback, re-raised with the exception
_LOG: Final = 1  # False, True or the _UnretrievedGuard: report the exception
_MSG: Final = 2  # cancel()'s message, when it is not None
_SRC: Final = 3  # the creation stack, in debug mode
_MUST: Final = 4  # Task: cancel() came while no future could be cancelled
_LDP: Final = 5  # Task: report "destroyed but pending"


#: The record of a task that only asks for no "destroyed but pending" report
#: (every coroutine gather() wraps): shared, never written to. rare() copies
#: it, and the other writes to a record only ever change a value it does not
#: hold.
NOT_LOGGED: Final[list[Any]] = [None, False, None, None, False, False]


def rare(fut: Any) -> list[Any]:
    """*fut*'s own record of rarely set state (see ``_rare``), made on first use."""
    record: list[Any] | None = fut._rare
    if record is None:
        record = [None, False, None, None, False, True]
        fut._rare = record
    elif record is NOT_LOGGED:
        record = NOT_LOGGED.copy()
        fut._rare = record
    return record


def isfuture(obj: object) -> bool:
    """True for any future-like object (tidal's, asyncio's, or a duck type)."""
    if type(obj) is Future:
        return True
    return (
        hasattr(obj.__class__, "_asyncio_future_blocking")
        and getattr(obj, "_asyncio_future_blocking", None) is not None
    )


#: This module runs as Python (the pure build): no __setattr__ keeps a loop's
#: _divert up to date there (loopservices.BaseEventLoop), so a completion also
#: looks for call_soon in the instance dict.
_INTERPRETED: Final[bool] = hasattr(rare, "__code__")


@mypyc_attr(allow_interpreted_subclasses=True)
class Future(NativeBase):
    """A result that will be available later; awaitable from any task."""

    __slots__ = (
        "_loop", "_core", "_state", "_result", "_error", "_cbs",
        "_asyncio_future_blocking", "_rare", "__weakref__",
    )

    #: Whether set_exception() must attach an _UnretrievedGuard (Task has __del__).
    _needs_guard: ClassVar[bool] = True

    def __init__(self, *, loop: Any = None) -> None:
        if loop is None:
            from tidal._core.events import _get_event_loop_for_future

            loop = _get_event_loop_for_future()
        self._loop: Any = loop
        # The loop itself when it is tidal's, typed: completing the future then
        # appends to its ready queue directly instead of calling call_soon().
        core = tidal_loop(loop)
        self._core: LoopBase | None = core
        self._state: str = _PENDING
        self._result: Any = None
        # The exception set; while cancelled, a task's own CancelledError.
        self._error: BaseException | None = None
        # None, one entry, or a list of entries (see cb_list()).
        self._cbs: Any = None
        self._asyncio_future_blocking: bool = False
        self._rare: list[Any] | None = None
        if core._debug if core is not None else loop.get_debug():
            rare(self)[_SRC] = extract_stack(sys._getframe(_CALLER_DEPTH))

    @classmethod
    def __class_getitem__(cls, item: Any) -> GenericAlias:
        # A method, not ``classmethod(GenericAlias)``: mypyc compiles no such class attribute.
        return GenericAlias(cls, item)

    # ``isinstance(x, asyncio.Future)`` consults ``x.__class__`` when the type
    # itself does not match, so reporting asyncio's class here makes tidal's
    # futures pass the checks libraries make (anyio's cancel delivery,
    # asyncio.wrap_future, singledispatch on asyncio.Future) without
    # subclassing asyncio's C implementation.  ``type(fut)`` stays tidal's
    # Future, and subclasses report themselves.  tidal's own code always
    # tests ``type(x)``.
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        cls = type(self)
        return _AIO_FUTURE if cls is Future else cls

    def __repr__(self) -> str:
        return _future_repr(self)

    def _report_unretrieved(self) -> None:
        # Called when the future is finalized with its exception unread.
        context: dict[str, Any] = {
            "message": f"{type(self).__name__} exception was never retrieved",
            "exception": self._error,
            "future": self,
        }
        source_traceback = self._source_traceback
        if source_traceback:
            context["source_traceback"] = source_traceback
        self._loop.call_exception_handler(context)

    def get_loop(self) -> Any:
        """The loop this future is bound to."""
        try:
            loop = self._loop
        except AttributeError:  # Future.__init__ was skipped
            loop = None
        if loop is None:
            raise RuntimeError("Future object is not initialized.")
        return loop

    def _make_cancelled_error(self) -> CancelledError:
        exc = self._error
        if exc is not None and self._state is not _FINISHED:
            # The task's own CancelledError (see _cancelled_exc), handed over
            # once, on every version (3.11.7's C Future too): keeping it would
            # keep its traceback's frames, and their locals, alive. Stripped
            # here, not when the task stored it: most are never handed over.
            self._error = None
            strip_internal_frames(exc)
            return exc  # type: ignore[return-value]
        record = self._rare
        if record is None or record[_MSG] is None:
            return CancelledError()
        return CancelledError(record[_MSG])

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the future and schedule its callbacks; False if already done."""
        record = self._rare
        if record is not None and record[_LOG]:
            _retrieved(self)
        if self._state is not _PENDING:
            return False
        self._state = _CANCELLED
        if msg is not None:
            rare(self)[_MSG] = msg
        elif record is not None and record[_MSG] is not None:
            record[_MSG] = None  # (so never the shared NOT_LOGGED)
        if self._cbs:
            self._schedule_callbacks()
        return True

    def _schedule_callbacks(self) -> None:
        callbacks = self._cbs
        self._cbs = None
        if not callbacks:
            return
        core = self._core
        # A call_soon() set on the loop instance (a test's mock.patch.object)
        # or a subclass's must see every callback, as asyncio's Future calls
        # it for each (LoopBase._divert).
        if core is None or core._divert or (_INTERPRETED and "call_soon" in core._tidal_attrs):
            loop = self._loop
            for cb in cb_list(callbacks):
                if type(cb) is tuple:
                    loop.call_soon(cb[0], self, context=cb[1])
                else:
                    loop.call_soon(cb._run)
            return
        if core._closed:
            raise RuntimeError("Event loop is closed")
        debug = core._debug
        ready = core._tidal_ready
        # type(), not .__class__: a waiting Task's __class__ is a property, a
        # Python call on every wake-up (~75 ns). One entry is the common case:
        # it is scheduled without a list or tuple around it.
        if type(callbacks) is list:
            entries: list[Any] = callbacks
            for cb in entries:
                if type(cb) is tuple:
                    _deque_append(ready, self._pair_handle(cb, core, debug))
                else:  # a tidal Task awaiting this future: run it next
                    _deque_append(ready, cb)
        elif type(callbacks) is tuple:
            _deque_append(ready, self._pair_handle(callbacks, core, debug))
        else:
            _deque_append(ready, callbacks)
        if debug:
            self._loop._check_thread()

    def _pair_handle(self, pair: tuple[Any, Any], loop: Any, debug: bool) -> Handle:
        # The Handle that runs a (callback, context) entry with this future.
        if debug:
            return Handle(pair[0], (self,), loop, pair[1])
        handle: Handle = _new_handle(Handle)  # the constructor's stores, as call_soon()
        handle._callback = pair[0]
        handle._args = (self,)
        handle._loop = loop
        handle._context = pair[1]
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        return handle

    @property
    def _callbacks(self) -> list[tuple[Any, Any]] | None:
        # asyncio's (C) Future shows its callbacks here as (callback, context)
        # pairs, None when there are none, read-only; code outside asyncio
        # iterates them (anyio's find_root_task). tidal keeps bare waiters in
        # _cbs for speed; this view shows each as the pair asyncio would hold.
        cbs = self._cbs
        if not cbs:
            return None
        return [cb if type(cb) is tuple else _as_pair(cb) for cb in cb_list(cbs)]

    @property
    def _log_traceback(self) -> bool:
        # asyncio's spelling of the flag; code outside tidal may only clear it.
        record = self._rare
        return record is not None and bool(record[_LOG])

    @_log_traceback.setter
    def _log_traceback(self, value: bool) -> None:
        if value:
            raise ValueError("_log_traceback can only be set to False")
        record = self._rare
        if record is not None and record[_LOG]:
            _retrieved(self)

    # asyncio's attributes for the state kept in _rare, for code that reads
    # or sets them (debuggers, test suites, libraries' cancellation code).

    @property
    def _exception_tb(self) -> Any:
        record = self._rare
        return None if record is None else record[_TB]

    @_exception_tb.setter
    def _exception_tb(self, value: Any) -> None:
        rare(self)[_TB] = value

    @property
    def _cancel_message(self) -> Any:
        record = self._rare
        return None if record is None else record[_MSG]

    @_cancel_message.setter
    def _cancel_message(self, value: Any) -> None:
        rare(self)[_MSG] = value

    # One slot, _error, holds what asyncio keeps in two: the exception set on
    # the future, and the CancelledError a task's coroutine raised, kept
    # until it is handed over (a cancelled future has no exception). Each
    # attribute shows its own.
    @property
    def _exception(self) -> BaseException | None:
        return None if self._state is _CANCELLED else self._error

    @_exception.setter
    def _exception(self, value: BaseException | None) -> None:
        self._error = value

    @property
    def _cancelled_exc(self) -> Any:
        if self._state is _FINISHED:
            return None
        exc = self._error
        if exc is not None:
            strip_internal_frames(exc)  # as _make_cancelled_error() hands it over
        return exc

    @_cancelled_exc.setter
    def _cancelled_exc(self, value: Any) -> None:
        if self._state is not _FINISHED:
            self._error = value

    @property
    def _source_traceback(self) -> Any:
        record = self._rare
        return None if record is None else record[_SRC]

    @_source_traceback.setter
    def _source_traceback(self, value: Any) -> None:
        rare(self)[_SRC] = value

    # A subclass whose __init__ skips Future.__init__ leaves the slots empty;
    # like asyncio's Future, such a future then reads as pending (the
    # AttributeError handlers cost nothing until they trigger).

    def cancelled(self) -> bool:
        """True if the future was cancelled."""
        try:
            return self._state is _CANCELLED
        except AttributeError:
            return False

    def done(self) -> bool:
        """True once a result, an exception or a cancellation is set."""
        try:
            return self._state is not _PENDING
        except AttributeError:
            return False

    def result(self) -> Any:
        """The result; raises the exception, CancelledError or InvalidStateError."""
        try:
            state = self._state
        except AttributeError:
            state = _PENDING
        if state is _FINISHED:
            exc = self._error
            if exc is not None:
                record = self._rare
                if record is None:  # set by hand, not through set_exception()
                    raise exc
                if record[_LOG]:
                    _retrieved(self)
                raise exc.with_traceback(record[_TB])
            return self._result
        if state is _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Result is not set.")

    def exception(self) -> BaseException | None:
        """The exception set on the future, or None."""
        try:
            state = self._state
        except AttributeError:
            state = _PENDING
        if state is _CANCELLED:
            raise self._make_cancelled_error()
        if state is not _FINISHED:
            raise InvalidStateError("Exception is not set.")
        record = self._rare
        if record is not None and record[_LOG]:
            _retrieved(self)
        return self._error

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``fn(future)`` through the loop once the future is done."""
        if self._state is not _PENDING:
            self._loop.call_soon(fn, self, context=context)
            return
        if context is None:
            context = _copy_context()
        callbacks = self._cbs
        if callbacks is None:
            self._cbs = (fn, context)
        elif type(callbacks) is list:
            callbacks.append((fn, context))
        else:
            self._cbs = [callbacks, (fn, context)]

    def _add_task_waiter(self, task: Task[Any]) -> None:
        # The wake-up path for tidal tasks: see the module docstring.
        add_entry(self, task)

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        """Remove every registration of *fn*; return how many were removed."""
        callbacks = self._cbs
        if not callbacks:
            return 0
        if type(callbacks) is not list:
            if type(callbacks) is tuple and callbacks[0] == fn:
                self._cbs = None
                return 1
            return 0
        kept = [cb for cb in callbacks if type(cb) is not tuple or cb[0] != fn]
        removed = len(callbacks) - len(kept)
        if removed:
            callbacks[:] = kept
        return removed

    def set_result(self, result: Any) -> None:
        """Mark the future done with *result* and schedule its callbacks."""
        if self._state is not _PENDING:
            raise InvalidStateError("invalid state")
        self._result = result
        self._state = _FINISHED
        if self._cbs:
            self._schedule_callbacks()

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """Mark the future done with *exception* and schedule its callbacks."""
        if self._state is not _PENDING:
            raise InvalidStateError("invalid state")
        if isinstance(exception, type):
            exception = exception()
        # 3.11/3.12 refuse a bare StopIteration; 3.13 wraps any StopIteration
        # (subclasses too) in a RuntimeError.
        if (
            isinstance(exception, StopIteration)
            if _WRAP_STOPITERATION
            else type(exception) is StopIteration
        ):
            if not _WRAP_STOPITERATION:
                raise TypeError(
                    "StopIteration interacts badly with generators "
                    "and cannot be raised into a Future"
                )
            new_exc = RuntimeError(
                "StopIteration interacts badly with generators "
                "and cannot be raised into a Future"
            )
            new_exc.__cause__ = exception
            new_exc.__context__ = exception
            exception = new_exc
        self._error = exception
        record = rare(self)
        record[_TB] = exception.__traceback__
        self._state = _FINISHED
        if self._cbs:
            self._schedule_callbacks()
        record[_LOG] = _UnretrievedGuard(self) if self._needs_guard else True

    # The pure build's __await__ and __iter__ are interpreted.make_future_await's
    # Python generator (see there); the compiled build's are these.
    def __await__(self) -> Generator[Any, None, Any]:
        # An iterator, which is all that await needs.
        return cast("Generator[Any, None, Any]", _FutureIter(self))

    def __iter__(self) -> Generator[Any, None, Any]:
        return cast("Generator[Any, None, Any]", _FutureIter(self))


class _FutureIter:
    """What ``await fut`` runs in the compiled build (asyncio's C FutureIter).

    A native iterator of two words, where a Python generator costs a parked
    await 200 bytes. Its ``throw()`` is a finished generator's (set below):
    an exception thrown into the awaiting coroutine is then raised at its
    ``await`` line with no entry of tidal's, the traceback asyncio's C future
    gives (a compiled method would add one; a compiled generator would drop
    the traceback, see interpreted.py).
    """

    def __init__(self, fut: Future) -> None:
        self._fut = fut
        self._yielded = False

    def __iter__(self) -> _FutureIter:
        return self

    def __next__(self) -> Any:
        fut = self._fut
        if fut._state is _PENDING:
            if self._yielded:
                raise _not_awaited_error()
            self._yielded = True
            fut._asyncio_future_blocking = True
            return fut  # the task parks here until the future completes
        # The raise on a line of its own: setup.py drops its traceback entry
        # (a code object and a frame per resumed await), not result()'s.
        result = fut.result()
        raise _StopIteration(result)  # no traceback entry

    def send(self, value: Any) -> Any:
        """As a generator's ``send()``: what a task (or ``yield from``) resumes with."""
        return self.__next__()

    def close(self) -> None:
        """Nothing to release (asyncio's FutureIter drops its future)."""


def cb_list(cbs: Any) -> list[Any]:
    """A future's ``_cbs`` as a list of entries.

    ``_cbs`` is None, a single entry (a ``(callback, context)`` pair, a task,
    a gather record...), or a list of entries (the second one makes it a
    list): most futures get one callback, and a one-item list would cost
    each of them 72 B more.
    """
    if cbs is None:
        return []
    if type(cbs) is list:
        return cbs  # type: ignore[no-any-return]
    return [cbs]


def add_entry(fut: Any, entry: Any) -> None:
    """Append *entry* to *fut*'s callbacks (see cb_list())."""
    callbacks = fut._cbs
    if callbacks is None:
        fut._cbs = entry
    elif type(callbacks) is list:
        callbacks.append(entry)
    else:
        fut._cbs = [callbacks, entry]


def failure(fut: Any) -> BaseException | None:
    """What ``fut.result()`` would raise for a done *fut*, or None if it has a result.

    Marks the exception retrieved and restores its traceback, so the caller
    can ``raise`` it in its own frame: tracebacks then show no
    ``Future.result`` frame, as with asyncio's C Future.
    """
    cls = type(fut)
    if cls is Future or cls is _task_class[0]:
        state = fut._state
        if state is _FINISHED:
            exc: BaseException | None = fut._error
            if exc is None:
                return None
            record: list[Any] | None = fut._rare
            if record is None:  # set by hand, not through set_exception()
                return exc
            if record[_LOG]:
                _retrieved(fut)
            return exc.with_traceback(record[_TB])
        if state is _CANCELLED:
            cancelled: CancelledError = fut._make_cancelled_error()
            return cancelled
    try:
        fut.result()
    except BaseException as exc:
        return exc
    return None


#: sys._getframe() depth of the caller of a method here: 1, or 0 when this
#: module is compiled (a compiled function pushes no frame; it has no __code__).
_CALLER_DEPTH: Final[int] = 1 if hasattr(Future.cancel, "__code__") else 0

#: The class users see is Future itself, in both builds (see native.NativeBase);
#: the name stays for the modules that import it.
_Future: Final[type[Future]] = Future

#: tidal's Task, filled in by tasks.py (which imports this module).
_task_class: Final[list[type]] = [_Future]


def _retrieved(fut: Any) -> Any:
    """Clear *fut*'s "log the exception" flag, then drop the guard it may hold.

    In that order: a compiled attribute store releases the old value before
    it writes the new one, and the guard's finalizer would find itself still
    stored and report an exception that was just read. Returned, so that the
    caller drops it: compiled code releases a local at its last use.
    """
    record: list[Any] = fut._rare
    guard = record[_LOG]
    record[_LOG] = False
    return guard


def _not_awaited_error() -> RuntimeError:
    return RuntimeError("await wasn't used with future")


#: Future.__await__ as a Python generator (see interpreted.py): the pure
#: build's; the compiled one's is the native _FutureIter, set again on the
#: class so that the type's await slot calls it.
_future_await: Final = make_future_await(_PENDING, _not_awaited_error)
if is_compiled(sys.modules[__name__]):
    _own = vars(_Future)
    install(_Future, {"__await__": _own["__await__"], "__iter__": _own["__iter__"]})
    # asyncio's FutureIter has throw(), which raises what it is given: so does
    # this one, without a traceback entry of its own (see exhausted_throw).
    install(_FutureIter, {"throw": exhausted_throw()})
else:
    install(_Future, {"__await__": _future_await, "__iter__": _future_await})


def _as_pair(entry: Any) -> tuple[Any, Any]:
    # A waiter entry (a Task, a gather/wait record) as a (callback, context) pair.
    pair: Callable[[], tuple[Any, Any]] | None = getattr(entry, "_callback_pair", None)
    if pair is not None:
        return pair()
    return (entry._run, None)


class _UnretrievedGuard:
    """Reports a future's exception if nobody ever read it.

    A ``__del__`` on Future itself would cost every future a finalizer call
    (~95 ns) although only futures holding an exception need one.  Instead
    ``set_exception()`` stores this guard as the future's "log the
    traceback" flag; reading the exception (or clearing the flag) drops it.
    The guard and the future reference each other, so an abandoned pair is
    reclaimed by the cyclic collector, which runs this finalizer first (PEP
    442): the report comes at the next collection rather than at once.  Tasks
    keep their own ``__del__`` (they need it for "destroyed but pending").
    """

    __slots__ = ("future",)

    def __init__(self, future: Future) -> None:
        self.future = future

    def __del__(self) -> None:
        fut = self.future
        record = fut._rare
        if record is not None and record[_LOG] is self:
            fut._report_unretrieved()


def format_callbacks(callbacks: list[Any]) -> str:
    """``cb=[...]`` for a future's repr, as asyncio prints it."""

    def one(cb: Any) -> str:
        if type(cb) is tuple:
            return format_callback_source(cb[0], ())
        # Other queued-as-is entries (gather, TaskGroup...) describe themselves.
        describe = getattr(cb, "_callback_repr", None)
        return "Task.task_wakeup()" if describe is None else str(describe())

    size = len(callbacks)
    if size == 1:
        text = one(callbacks[0])
    elif size == 2:
        text = f"{one(callbacks[0])}, {one(callbacks[1])}"
    elif size > 2:
        text = f"{one(callbacks[0])}, <{size - 2} more>, {one(callbacks[-1])}"
    else:
        text = ""
    return f"cb=[{text}]"


# Bound at import time, not in __repr__: a future reported while the
# interpreter shuts down can no longer import anything.
from tidal._core.reprs import future_repr as _future_repr  # noqa: E402

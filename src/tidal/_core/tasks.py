"""tidal's Task: drives a coroutine, one step per turn of the loop.

The hot path is :func:`_step`.  A step sends into the coroutine and looks at
what it yielded:

* a tidal future (or task) that is pending: the task appends *itself* to the
  future's callback list.  When the future completes, the task goes straight
  onto the loop's ready queue and the loop calls ``task._run()``.  No Handle,
  no bound ``__wakeup`` method, no extra ``result()`` call: ``Future.__await__``
  fetches the result when the coroutine resumes.
* ``None`` (a bare ``yield``, which is what ``sleep(0)`` does): the task goes
  back on the ready queue as it is.
* any other asyncio-compatible future: the generic ``add_done_callback`` path,
  exactly as asyncio does it.

The current-task and all-tasks registries are asyncio's own (see ``_aio``), so
``asyncio.current_task()`` and ``asyncio.all_tasks()`` see tidal tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import linecache
import sys
import traceback
import weakref
from asyncio import CancelledError, InvalidStateError
from collections import deque
from collections.abc import Coroutine
from types import CoroutineType, GeneratorType, GenericAlias
from typing import Any, ClassVar, Final, Generic, TextIO, TypeVar, cast

from tidal._core import _aio
from tidal._core import futures as _futures_module
from tidal._core.events import _get_event_loop_for_future, get_event_loop, get_running_loop
from tidal._core.format import extract_stack
from tidal._core.futures import (
    _CANCELLED,
    _FINISHED,
    _LDP,
    _LOG,
    _MSG,
    _MUST,
    _PENDING,
    _SRC,
    _TB,
    NOT_LOGGED,
    Future,
    _Future,
    _retrieved,
    isfuture,
    rare,
)
from tidal._core.handles import Handle
from tidal._core.interpreted import _wrap_awaitable, install, make_task_run
from tidal._core.loopbase import LoopBase, tidal_loop
from tidal._core.native import mypyc_attr
from tidal._core.plumbing import finish_await, internal_frames, strip_internal_frames
from tidal._core.reprs import task_repr

__all__ = ("Task", "current_task", "all_tasks", "iscoroutine")

_T = TypeVar("_T")

_current_tasks: Final = _aio.current_tasks
_register_task: Final = _aio.register_task
# asyncio.all_tasks() registration, inlined in Task.__init__ (see _aio).
_registry_add: Final = _aio._registry_data.add if _aio._registry_data is not None else None
_registry_remove: Final = _aio._registry_remove
_weakref: Final = weakref.ref
_get_running_loop_or_none: Final = _aio.get_running_loop_or_none
_copy_context: Final = contextvars.copy_context
# Methods as descriptors: compiled, a call through one skips the lookup by
# name that ``obj.method(...)`` costs on every step (mypyc has no primitive).
_context_run: Final = contextvars.Context.run
_deque_append: Final = deque.append
_dict_pop: Final = dict.pop
_next_task_number: Final = itertools.count(1).__next__
_UNCANCEL_CLEARS_MUST_CANCEL: Final = sys.version_info >= (3, 13)
#: What ``__class__`` reports for tidal's Task (see Future.__class__).
_AIO_TASK: Final[type] = asyncio.Task

_coroutine_types: Final[set[type]] = {CoroutineType}
if sys.version_info < (3, 12):
    # 3.11's asyncio still takes generator-based coroutines (`yield from`).
    _coroutine_types.add(GeneratorType)


def iscoroutine(obj: object) -> bool:
    """True for a coroutine object (native or any ``collections.abc.Coroutine``)."""
    cls = type(obj)
    if cls in _coroutine_types:
        return True
    if isinstance(obj, Coroutine):
        # Cache positives only: a cache of negatives could grow without bound.
        if len(_coroutine_types) < 100:
            _coroutine_types.add(cls)
        return True
    return False


@mypyc_attr(allow_interpreted_subclasses=True)
class Task(Future, Generic[_T]):
    """A coroutine wrapped in a Future, scheduled on the loop."""

    __slots__ = (
        "_coro", "_context", "_name", "_fut_waiter", "_num_cancels_requested",
    )

    # Stored by _setup(), for Task() and new_task() alike.
    _coro: Any
    _context: contextvars.Context
    # An int stands for the name "Task-<int>", formatted only when asked.
    _name: Any
    _fut_waiter: Any
    _num_cancels_requested: int
    # _must_cancel and _log_destroy_pending are in Future._rare (properties
    # below), as are the cancel message and the rest.

    _needs_guard: ClassVar[bool] = False

    def __init__(
        self,
        coro: Any,
        *,
        loop: Any = None,
        name: object = None,
        context: contextvars.Context | None = None,
        eager_start: bool = False,
    ) -> None:
        if loop is None:
            loop = _get_event_loop_for_future()
        core = tidal_loop(loop)
        if core._debug if core is not None else loop.get_debug():
            source_traceback: Any = extract_stack(sys._getframe(_CALLER_DEPTH))
        else:
            source_traceback = None
        _setup(self, loop, core, coro, name, context, source_traceback)
        if eager_start and loop.is_running():
            self._eager_start()
            return
        # Queue the task itself, unless debug mode or a call_soon() set on
        # the loop instance (asyncio schedules the first step with it) asks
        # for the Handle path.
        if (
            core is not None and not core._debug and not core._divert
            and not (_INTERPRETED and "call_soon" in core._tidal_attrs)
        ):
            if core._closed:
                raise RuntimeError("Event loop is closed")
            _deque_append(core._tidal_ready, self)
        else:
            # The handle already runs in the task's context: _run() would
            # enter it a second time.
            loop.call_soon(self._step_now, context=self._context)
        _register(self)

    def __del__(self) -> None:
        record = self._rare
        if self._state is _PENDING and (record is None or record[_LDP]):
            context: dict[str, Any] = {
                "task": self,
                "message": "Task was destroyed but it is pending!",
            }
            if record is not None and record[_SRC]:
                context["source_traceback"] = record[_SRC]
            self._loop.call_exception_handler(context)
        if record is not None and record[_LOG]:
            self._report_unretrieved()

    @property
    def _must_cancel(self) -> bool:
        record = self._rare
        return record is not None and bool(record[_MUST])

    @_must_cancel.setter
    def _must_cancel(self, value: bool) -> None:
        rare(self)[_MUST] = value

    @property
    def _log_destroy_pending(self) -> bool:
        record = self._rare
        return record is None or bool(record[_LDP])

    @_log_destroy_pending.setter
    def _log_destroy_pending(self, value: bool) -> None:
        if not value and self._rare is None:
            self._rare = NOT_LOGGED  # shared: no record made for this alone
        else:
            rare(self)[_LDP] = value

    @classmethod
    def __class_getitem__(cls, item: Any) -> GenericAlias:
        # A method, not ``classmethod(GenericAlias)``: mypyc compiles no such class attribute.
        return GenericAlias(cls, item)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        # isinstance(task, asyncio.Task) holds, as for Future (see there).
        cls = type(self)
        return _AIO_TASK if cls is Task else cls

    def __repr__(self) -> str:
        return task_repr(self)

    def _run(self) -> None:
        # What the loop calls when it pops this task off the ready queue; the
        # public class's _run is interpreted.make_task_run's (see there).
        _task_run(self)

    def _report_step_error(self, exc: BaseException) -> None:
        # What a step run as a Handle would report (see interpreted.make_task_run).
        Handle(self._step_now, (), self._loop, self._context)._report(exc)

    def _callback_pair(self) -> tuple[Any, Any]:
        # How Future._callbacks shows this task waiting (asyncio: its wakeup).
        return (self.task_wakeup, self._context)

    def _step_now(self) -> None:
        # A step from a handle that runs in the task's context already.
        _step(self, None)
        del self  # see _step()

    def task_wakeup(self, future: Any) -> None:
        """Step the task once *future* (not a tidal one) is done.

        Named as asyncio's C Task names this callback, which reprs of the
        future show (``cb=[Task.task_wakeup()]``); a compiled method's
        ``__qualname__`` cannot be set, so the name is the method's own.
        """
        # The outcome is read here, so _step() must not read the waiter again.
        self._fut_waiter = None
        error: BaseException | None = None
        try:
            future.result()
        except BaseException as exc:
            strip_internal_frames(exc)
            error = exc
        # Stepped outside the except block: a coroutine run while that
        # exception is being handled would get it as the __context__ of the
        # next exception it raises (asyncio's C Task has no such block).
        _step(self, error)
        del error  # its traceback may hold this frame

    def _eager_start(self) -> None:
        loop = self._loop
        previous = _current_tasks.get(loop)
        _current_tasks[loop] = self
        try:
            _aio.register_eager_task(self)
            try:
                self._context.run(_step, self, None)
            finally:
                _aio.unregister_eager_task(self)
        finally:
            # _step() removed the task from the current-task slot on its way out.
            if previous is not None:
                _current_tasks[loop] = previous
            if self._state is not _PENDING:
                self._coro = None
            else:
                _register_task(self)

    def get_coro(self) -> Any:
        """The coroutine this task drives."""
        return self._coro

    def get_context(self) -> contextvars.Context:
        """The context the coroutine runs in."""
        return self._context

    def get_name(self) -> str:
        """The task's name, ``Task-<n>`` unless one was given."""
        name = self._name
        if type(name) is int:
            name = self._name = f"Task-{name}"
        return name  # type: ignore[no-any-return]

    def set_name(self, value: object) -> None:
        """Rename the task."""
        self._name = str(value)

    def set_result(self, result: Any) -> None:
        """Not supported: a task's result is what its coroutine returns."""
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        """Not supported: a task's exception is what its coroutine raises."""
        raise RuntimeError("Task does not support set_exception operation")

    def get_stack(self, *, limit: int | None = None) -> list[Any]:
        """Frames of the suspended coroutine, or of the traceback that ended it."""
        frames: list[Any] = []
        coro = self._coro
        frame = None
        for attr in ("cr_frame", "gi_frame", "ag_frame"):
            if hasattr(coro, attr):
                frame = getattr(coro, attr)
                break
        if frame is not None:
            while frame is not None:
                if limit is not None:
                    if limit <= 0:
                        break
                    limit -= 1
                frames.append(frame)
                frame = frame.f_back
            frames.reverse()
        elif self._state is _FINISHED and self._error is not None:
            tb = self._error.__traceback__
            while tb is not None:
                if limit is not None:
                    if limit <= 0:
                        break
                    limit -= 1
                frames.append(tb.tb_frame)
                tb = tb.tb_next
        return frames

    def print_stack(self, *, limit: int | None = None, file: TextIO | None = None) -> None:
        """Print :meth:`get_stack` the way the traceback module prints a stack."""
        entries = []
        checked: set[str] = set()
        for f in self.get_stack(limit=limit):
            filename = f.f_code.co_filename
            if filename not in checked:
                checked.add(filename)
                linecache.checkcache(filename)
            line = linecache.getline(filename, f.f_lineno, f.f_globals)
            entries.append((filename, f.f_lineno, f.f_code.co_name, line))
        exc = self._error if self._state is _FINISHED else None
        if not entries:
            print(f"No stack for {self!r}", file=file)
        elif exc is not None:
            print(f"Traceback for {self!r} (most recent call last):", file=file)
        else:
            print(f"Stack for {self!r} (most recent call last):", file=file)
        traceback.print_list(traceback.StackSummary.from_list(entries), file=file)
        if exc is not None:
            for line in traceback.format_exception_only(exc.__class__, exc):
                print(line, file=file, end="")

    def cancel(self, msg: Any = None) -> bool:
        """Ask the task to cancel itself: CancelledError is thrown into the coroutine."""
        if self._state is not _PENDING:
            done = self._rare
            if done is not None and done[_LOG]:
                done[_LOG] = False  # a task's flag is a bool, never a guard
            return False
        self._num_cancels_requested += 1
        waiter = self._fut_waiter
        # Positional, as asyncio's C Task passes it.
        if waiter is not None and waiter.cancel(msg):
            return True
        record = rare(self)
        record[_MUST] = True
        record[_MSG] = msg
        return True

    def cancelling(self) -> int:
        """How many cancellation requests are pending (see :meth:`uncancel`)."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Withdraw one cancellation request; return how many remain."""
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if _UNCANCEL_CLEARS_MUST_CANCEL and self._num_cancels_requested == 0:
                record = self._rare
                if record is not None and record[_MUST]:
                    record[_MUST] = False
        return self._num_cancels_requested


#: The class users see is Task itself, in both builds (see native.NativeBase);
#: the name stays for the modules that import it.
_Task: Final[type[Task[Any]]] = Task
_new_task: Final[Any] = Task.__new__
#: sys._getframe() depth of the caller of a method here: 1, or 0 when this
#: module is compiled (a compiled function pushes no frame; it has no __code__).
_CALLER_DEPTH: Final[int] = 1 if hasattr(Task.cancel, "__code__") else 0
#: This module runs as Python (the pure build): see futures._INTERPRETED.
_INTERPRETED: Final[bool] = _CALLER_DEPTH == 1


def _step(task: Task[Any], exc: BaseException | None) -> None:
    """Run *task* until its coroutine yields, registered as the current task.

    One function rather than asyncio's step/run-and-handle pair: this is the
    hottest code in tidal, and a Python call costs more than the lines.
    """
    if task._state is not _PENDING:
        raise InvalidStateError(f"_step(): already done: {task!r}, {exc!r}")
    waiter = task._fut_waiter
    if waiter is not None:
        task._fut_waiter = None
        if exc is None:
            # Woken by the tidal future it awaited: take its outcome here, as
            # asyncio's wakeup does with result() before the step.  A failure
            # is thrown straight into the coroutine (no Future.result frame
            # in the traceback); under a pending cancel() a cancelled
            # waiter's own CancelledError (and message) goes in, and a failed
            # waiter's exception counts as retrieved.
            state = waiter._state
            if state is _FINISHED:
                exc = waiter._error
                if exc is not None:
                    # (No _rare: the exception was set by hand, not by set_exception().)
                    if waiter._rare is not None:
                        if waiter._rare[_LOG]:
                            _retrieved(waiter)
                        exc = exc.with_traceback(waiter._rare[_TB])
                    finish_await(task._coro)
            elif state is _CANCELLED:
                exc = waiter._make_cancelled_error()
                finish_await(task._coro)
    own = task._rare
    if own is not None and own[_MUST]:
        if not isinstance(exc, CancelledError):
            exc = task._make_cancelled_error()
        own[_MUST] = False
    loop = task._loop
    # An eager start has made the task current already.  The registration is
    # a subscript store, not a call: a call returning would check for signals
    # (Ctrl-C) before the try below could undo the registration.
    current = _current_tasks.get(loop)
    if current is None:
        _current_tasks[loop] = task
    elif current is not task:
        raise RuntimeError(
            f"Cannot enter into task {task!r} while another task {current!r} is being executed."
        )
    try:
        coro = task._coro
        try:
            result = coro.send(None) if exc is None else coro.throw(exc)  # no traceback entry
        except StopIteration as stop:
            own = task._rare
            if own is not None and own[_MUST]:
                own[_MUST] = False
                Future.cancel(task, msg=own[_MSG])
            else:
                task._result = stop.value
                task._state = _FINISHED
                if task._cbs:
                    task._schedule_callbacks()
        except CancelledError as cancelled:
            # Task._cancelled_exc (see Future._cancelled_exc); its traceback
            # is stripped when it is handed over (Future._make_cancelled_error).
            task._error = cancelled
            Future.cancel(task)
        except (KeyboardInterrupt, SystemExit) as fatal:
            Future.set_exception(task, fatal)
            raise
        except BaseException as error:
            strip_internal_frames(error)
            Future.set_exception(task, error)
        else:
            cls = type(result)
            if result is None:
                # A bare yield (sleep(0)): run again on the next turn.
                core = task._core
                if core is not None:
                    _deque_append(core._tidal_ready, task)
                else:
                    loop.call_soon(task._run)
            elif cls in _plain_future_classes or (
                isinstance(result, Future) and _is_plain_future(cls)
            ):
                fut: Future = result  # typed: native attribute access, compiled
                if fut._loop is not loop:
                    _fail_step(
                        task, f"Task {task!r} got Future {result!r} attached to a different loop"
                    )
                elif not fut._asyncio_future_blocking:
                    _fail_step(
                        task,
                        f"yield was used instead of yield from in task {task!r} with {result!r}",
                    )
                elif fut is task:
                    _fail_step(task, f"Task cannot await on itself: {task!r}")
                else:
                    # The wake-up path: see the module docstring.
                    fut._asyncio_future_blocking = False
                    if fut._state is _PENDING:
                        callbacks = fut._cbs
                        if callbacks is None:
                            fut._cbs = task
                        elif type(callbacks) is list:
                            callbacks.append(task)
                        else:
                            fut._cbs = [callbacks, task]
                    else:  # yielded an already-done future by hand
                        loop.call_soon(task._run)
                    task._fut_waiter = fut
                    own = task._rare
                    if own is not None and own[_MUST] and result.cancel(own[_MSG]):
                        own[_MUST] = False
            else:
                _step_foreign(task, result)
    finally:
        current = _dict_pop(_current_tasks, loop, None)
        if current is not task:
            raise RuntimeError(
                f"Leaving task {task!r} does not match the current task {current!r}."
            )
    # An exception's traceback keeps this frame: it must not keep the task
    # (nor its coroutine), or an unretrieved exception is reported at some
    # later garbage collection instead of when the task is dropped; nor the
    # exception thrown in, whose traceback holds this frame (a cycle).
    del task, current, coro, waiter, exc, own


def _setup(
    task: Task[Any], loop: Any, core: LoopBase | None, coro: Any, name: object,
    context: contextvars.Context | None, source_traceback: Any,
) -> None:
    # Task.__init__'s stores (Future.__init__'s inlined: a Python call costs
    # as much as they do), shared with new_task().
    task._loop = loop
    task._core = core
    task._state = _PENDING
    task._result = None
    task._error = None
    task._cbs = None
    task._asyncio_future_blocking = False
    task._rare = None
    if source_traceback is not None:
        rare(task)[_SRC] = source_traceback
    if type(coro) is not CoroutineType and not iscoroutine(coro):
        rare(task)[_LDP] = False
        task._coro = None
        raise TypeError(f"a coroutine was expected, got {coro!r}")
    task._name = _next_task_number() if name is None else str(name)
    task._num_cancels_requested = 0
    task._fut_waiter = None
    task._coro = coro
    task._context = _copy_context() if context is None else context


def _register(task: Task[Any]) -> None:
    # asyncio.all_tasks() sees the task from now on.
    if _registry_add is not None:
        _registry_add(_weakref(task, _registry_remove))
    else:  # pragma: no cover - a WeakSet without its usual internals
        _register_task(task)


def new_task(
    loop: LoopBase, coro: Any, name: object, context: contextvars.Context | None
) -> Any:
    """``Task(coro, loop=loop, name=name, context=context)``, scheduled, for *loop*'s create_task().

    *loop* is a tidal loop, open, not in debug mode, with no task factory: a
    class call with keywords into ``__init__`` costs more than the task's
    whole setup (0.5 against 0.3 us, 3.12), so the loop's hot path skips it.
    """
    task: Task[Any] = _new_task(_Task)  # typed: native stores when compiled
    if type(coro) is CoroutineType:
        # _setup()'s stores for a coroutine, inline: the call would cost a
        # tenth of the whole task's creation in the pure build.
        task._loop = loop
        task._core = loop
        task._state = _PENDING
        task._result = None
        task._error = None
        task._cbs = None
        task._asyncio_future_blocking = False
        task._rare = None
        task._name = _next_task_number() if name is None else str(name)
        task._num_cancels_requested = 0
        task._fut_waiter = None
        task._coro = coro
        task._context = _copy_context() if context is None else context
    else:
        _setup(task, loop, loop, coro, name, context, None)
    if not loop._divert and not (_INTERPRETED and "call_soon" in loop._tidal_attrs):
        _deque_append(loop._tidal_ready, task)
    else:
        cast(Any, loop).call_soon(task._step_now, context=task._context)
    if _registry_add is not None:  # _register(task), inline
        _registry_add(_weakref(task, _registry_remove))
    else:  # pragma: no cover - a WeakSet without its usual internals
        _register_task(task)
    return task


_futures_module._task_class[0] = _Task
#: Task._run as Python code, in both builds (see interpreted.py).
_task_run: Final = make_task_run(_step)
install(_Task, {"_run": _task_run})
#: _step as an object, for context.run(): compiled code reads a Final name
#: from a C static, a function's name from the module's dict.
_step_function: Final = _step


def run_task(task: Task[Any]) -> None:
    """Task._run without its frame: what the compiled loop calls (loop.run_native).

    The same as interpreted.make_task_run's ``_run``; compiled, it pushes no
    Python frame, as asyncio's C Task pushes none.
    """
    try:
        _context_run(task._context, _step_function, task, None)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        task._report_step_error(exc)

# Tracebacks through a task show none of these frames (plumbing.py).
internal_frames(
    _step, Future.result, _Future.__await__, _futures_module._FutureIter.__next__,
    Task.task_wakeup, _Task._run, Task._step_now,
)


#: Future classes whose add_done_callback is Future's: a task waiting on one
#: may put itself in its callback list directly.
_plain_future_classes: Final[set[type]] = {_Future, _Task}


def _is_plain_future(cls: type) -> bool:
    if cls.add_done_callback is not Future.add_done_callback:  # type: ignore[attr-defined]
        return False  # the subclass must see the callback being added
    if len(_plain_future_classes) < 100:
        _plain_future_classes.add(cls)
    return True


def _step_foreign(task: Task[Any], result: Any) -> None:
    # The coroutine yielded something that is not a plain tidal future.
    blocking = getattr(result, "_asyncio_future_blocking", None)
    if blocking is not None:
        try:
            result_loop = result.get_loop()
        except AttributeError:
            result_loop = result._loop
        if result_loop is not task._loop:
            _fail_step(task, f"Task {task!r} got Future {result!r} attached to a different loop")
        elif not blocking:
            _fail_step(
                task, f"yield was used instead of yield from in task {task!r} with {result!r}"
            )
        elif result is task:
            _fail_step(task, f"Task cannot await on itself: {task!r}")
        else:
            result._asyncio_future_blocking = False
            result.add_done_callback(task.task_wakeup, context=task._context)
            task._fut_waiter = result
            own = task._rare
            if own is not None and own[_MUST] and result.cancel(own[_MSG]):
                own[_MUST] = False
    elif inspect.isgenerator(result):
        _fail_step(
            task,
            f"yield was used instead of yield from for generator in task {task!r} with {result!r}",
        )
    else:
        _fail_step(task, f"Task got bad yield: {result!r}")


def _fail_step(task: Task[Any], message: str) -> None:
    task._loop.call_soon(_step, task, RuntimeError(message), context=task._context)


def current_task(loop: Any = None) -> Any:
    """The task running on *loop* (default: the running loop), or None."""
    if loop is None:
        loop = get_running_loop()
    return _current_tasks.get(loop)


def _loop_of(fut: Any) -> Any:
    try:
        return fut.get_loop()
    except AttributeError:
        return fut._loop


def all_tasks(loop: Any = None) -> set[Any]:
    """The set of not-yet-done tasks of *loop* (default: the running loop)."""
    if loop is None:
        loop = get_running_loop()
    return {t for t in _aio.snapshot_tasks() if _loop_of(t) is loop and not t.done()}


def ensure_future(coro_or_future: Any, *, loop: Any = None) -> Any:
    """A future for *coro_or_future*: futures pass through, coroutines become tasks."""
    if isfuture(coro_or_future):
        if loop is not None and loop is not _loop_of(coro_or_future):
            raise ValueError(
                "The future belongs to a different loop than the one specified as the loop argument"
            )
        return coro_or_future
    should_close = True
    if not iscoroutine(coro_or_future):
        if inspect.isawaitable(coro_or_future):
            should_close = False
            coro_or_future = _wrap_awaitable(coro_or_future)
        else:
            raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")
    if loop is None:
        loop = get_event_loop()
    try:
        return loop.create_task(coro_or_future)
    except RuntimeError:
        if should_close:
            coro_or_future.close()
        raise


def create_eager_task_factory(custom_task_constructor: Any) -> Any:
    """A task factory whose tasks start running synchronously in create_task() (3.12+)."""

    def factory(loop: Any, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        return custom_task_constructor(
            coro, loop=loop, name=name, context=context, eager_start=True
        )

    return factory


#: ``loop.set_task_factory(tidal.eager_task_factory)``: tidal tasks, started eagerly.
eager_task_factory: Final = create_eager_task_factory(_Task)


def create_task(coro: Any, *, name: Any = None, context: Any = None) -> Any:
    """Schedule *coro* as a task on the running loop and return the task."""
    loop = _get_running_loop_or_none()
    if loop is None:
        raise RuntimeError("no running event loop")
    if context is None:
        return loop.create_task(coro, name=name)
    return loop.create_task(coro, name=name, context=context)

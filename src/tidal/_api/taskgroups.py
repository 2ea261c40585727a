"""``TaskGroup``: structured concurrency, as asyncio's (3.11, 3.12 or 3.13).

All tasks created in the group are awaited when the ``async with`` block
exits.  The first task failing with an ordinary exception cancels the others
and the parent's block; the errors come out as one ``BaseExceptionGroup``.
SystemExit and KeyboardInterrupt are re-raised as they are.

Version differences followed here:

* 3.12+ settles a task that is already done when created (eager tasks) at
  once instead of through a done-callback;
* 3.13 closes the coroutine when create_task() refuses it, passes *name* to
  ``loop.create_task()``, treats CancelledError subclasses like
  CancelledError, withdraws its own cancellation of the parent only after
  the children are done, and keeps the parent's cancel count stable when it
  raises the exception group while the parent is being cancelled.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import sys
import warnings
from asyncio import CancelledError
from types import TracebackType
from typing import Any

from tidal._api._notify import listen
from tidal._core.events import get_running_loop
from tidal._core.tasks import current_task

__all__ = ("TaskGroup",)

_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)


def _is_cancellation(exc_type: type[BaseException]) -> bool:
    # 3.13 accepts subclasses; 3.11/3.12 compare the class exactly.
    if _PY313:
        return issubclass(exc_type, CancelledError)
    return exc_type is CancelledError


class TaskGroup:
    """Async context manager that runs a group of tasks and waits for them all.

    Example::

        async with tidal.TaskGroup() as group:
            group.create_task(one())
            group.create_task(two())
        # both are done here

    If a task fails (with anything but CancelledError), the remaining tasks
    are cancelled and the errors are raised together as an exception group.
    """

    __slots__ = (
        "_entered", "_exiting", "_aborting", "_loop", "_parent_task",
        "_parent_cancel_requested", "_tasks", "_errors", "_base_error",
        "_on_completed_fut", "__weakref__",
    )

    def __init__(self) -> None:
        self._entered = False
        self._exiting = False
        self._aborting = False
        self._loop: Any = None
        self._parent_task: Any = None
        self._parent_cancel_requested = False
        self._tasks: set[Any] = set()
        self._errors: list[BaseException] | None = []
        self._base_error: BaseException | None = None
        self._on_completed_fut: Any = None

    def __repr__(self) -> str:
        info = ""
        if self._tasks:
            info += f" tasks={len(self._tasks)}"
        if self._errors:
            info += f" errors={len(self._errors)}"
        if self._aborting:
            info += " cancelling"
        elif self._entered:
            info += " entered"
        return f"<TaskGroup{info}>"

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has already been entered")
        if self._loop is None:
            self._loop = get_running_loop()
        self._parent_task = current_task(self._loop)
        if self._parent_task is None:
            raise RuntimeError(f"TaskGroup {self!r} cannot determine the parent task")
        self._entered = True
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exiting = True
        if exc is not None and self._is_base_error(exc) and self._base_error is None:
            self._base_error = exc

        propagate: BaseException | None = (
            exc if et is not None and _is_cancellation(et) else None
        )
        if not _PY313 and self._parent_cancel_requested:
            # We cancelled the parent ourselves: withdraw that request; if it
            # was the only one, the CancelledError is not to be propagated.
            if self._parent_task.uncancel() == 0:
                propagate = None

        if et is not None and not self._aborting:
            # The block failed or the parent is being cancelled: stop the tasks.
            self._abort()

        # A loop, because the wait can be cancelled again and again while the
        # parent task is being cancelled repeatedly.
        while self._tasks:
            if self._on_completed_fut is None:
                self._on_completed_fut = self._loop.create_future()
            try:
                await self._on_completed_fut
            except CancelledError as ex:
                if not self._aborting:
                    # The parent was cancelled while waiting for the tasks.
                    propagate = ex
                    self._abort()
            self._on_completed_fut = None

        assert not self._tasks

        if self._base_error is not None:
            raise self._base_error

        if _PY313 and self._parent_cancel_requested:
            if self._parent_task.uncancel() == 0:
                propagate = None

        # Errors in the tasks take precedence over the cancellation.
        if propagate is not None and not self._errors:
            raise propagate

        if et is not None and not _is_cancellation(et):
            assert exc is not None and self._errors is not None
            self._errors.append(exc)

        if self._errors:
            if _PY313 and self._parent_task.cancelling():
                # Cancelled from outside too: un-cancel and re-cancel so the
                # parent's cancel count stays what it was.
                self._parent_task.uncancel()
                self._parent_task.cancel()
            try:
                group = BaseExceptionGroup("unhandled errors in a TaskGroup", self._errors)
                raise group from None
            finally:
                # Exceptions hold frames (cycles): do not keep them alive.
                self._errors = None

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        """Create a task running *coro* in this group and return it."""
        if not self._entered:
            self._refuse(coro)
            raise RuntimeError(f"TaskGroup {self!r} has not been entered")
        if self._exiting and not self._tasks:
            self._refuse(coro)
            raise RuntimeError(f"TaskGroup {self!r} is finished")
        if self._aborting:
            self._refuse(coro)
            raise RuntimeError(f"TaskGroup {self!r} is shutting down")
        loop = self._loop
        if _PY313:
            if context is None:
                task = loop.create_task(coro, name=name)
            else:
                task = loop.create_task(coro, name=name, context=context)
        else:
            if context is None:
                task = loop.create_task(coro)
            else:
                task = loop.create_task(coro, context=context)
            if name is not None:
                _set_task_name(task, name)
        if _PY312 and task.done():
            # Finished eagerly: settle it now, no done-callback needed.
            self._on_task_done(task)
        else:
            self._tasks.add(task)
            listen(TaskGroup._on_task_done, self, task)
        return task

    @staticmethod
    def _refuse(coro: Any) -> None:
        # 3.13 closes a coroutine it will not run ("never awaited" otherwise).
        if _PY313:
            coro.close()

    def _is_base_error(self, exc: BaseException) -> bool:
        assert isinstance(exc, BaseException)
        return isinstance(exc, (SystemExit, KeyboardInterrupt))

    def _abort(self) -> None:
        self._aborting = True
        for task in self._tasks:
            if not task.done():
                task.cancel()

    def _on_task_done(self, task: Any) -> None:
        tasks = self._tasks
        tasks.discard(task)
        completed = self._on_completed_fut
        if completed is not None and not tasks and not completed.done():
            completed.set_result(True)

        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return

        assert self._errors is not None
        self._errors.append(exc)
        if self._is_base_error(exc) and self._base_error is None:
            self._base_error = exc

        parent = self._parent_task
        if parent.done():
            # Should not happen, but an error must never be dropped silently.
            self._loop.call_exception_handler({
                "message": f"Task {task!r} has errored out but its parent "
                f"task {parent} is already completed",
                "exception": exc,
                "task": task,
            })
            return

        if not self._aborting and not self._parent_cancel_requested:
            # Stop the parent's block too (whatever it is awaiting), and
            # remember to withdraw this cancellation in __aexit__.
            self._abort()
            self._parent_cancel_requested = True
            parent.cancel()


def _set_task_name(task: Any, name: Any) -> None:
    # 3.11/3.12 name the task after creating it, tolerating foreign tasks.
    try:
        set_name = task.set_name
    except AttributeError:
        warnings.warn(
            "Task.set_name() was added in Python 3.8, the method support will be "
            "mandatory for third-party task implementations since 3.13.",
            DeprecationWarning, stacklevel=3,
        )
    else:
        set_name(name)

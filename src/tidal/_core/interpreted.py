"""The core's methods that must run as Python code, in both builds.

Never compiled (docs/design.md, "Compiled build"). mypyc turns a generator
into an object that is no Python generator: a throw into it drops the
exception's traceback, it gives no DeprecationWarning for 3.12's
three-argument ``throw()``, and a coroutine cannot be closed inside it. And a
compiled function pushes no frame, while the watchdog finds the step in
progress by the frame of the ready item's ``_run()``. So the public classes
get these functions as their ``__await__``/``__iter__`` and ``_run``; the
compiled classes keep methods of the same names for mypy and for native
callers. The pure build installs the same functions, so one source serves
both builds.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

# Module globals, not closure cells: a free variable takes a slot in the frame
# of every generator made, and each parked await would hold 16 B more.
_pending: object = None
_not_awaited: Callable[[], RuntimeError] = RuntimeError


# Named __await__: tracebacks show the code's own name.
def __await__(self: Any) -> Generator[Any, None, Any]:
    if self._state is _pending:
        self._asyncio_future_blocking = True
        yield self  # the task parks here until the future completes
    if self._state is _pending:
        # A helper builds the error: a call with arguments here would raise
        # the frame's stack size to 3, and every parked await pays 8 B more.
        raise _not_awaited()
    return self.result()


__await__.__qualname__ = "Future.__await__"
#: The same function by a plain name (plumbing.py finds its frames by its code).
future_await: Callable[[Any], Generator[Any, None, Any]] = __await__


def make_future_await(
    pending: str, not_awaited: Callable[[], RuntimeError]
) -> Callable[[Any], Generator[Any, None, Any]]:
    """``Future.__await__``: park the awaiting task until the future is done."""
    global _pending, _not_awaited
    _pending, _not_awaited = pending, not_awaited
    return __await__


def make_task_run(step: Callable[[Any, Any], None]) -> Callable[[Any], None]:
    """``Task._run``: what the loop calls when it pops a task off the ready queue."""

    def _run(self: Any) -> None:
        try:
            self._context.run(step, self, None)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # asyncio runs a step in a Handle, which hands errors (such as
            # stepping a task already completed with Future.set_result) to
            # the exception handler: so does the queued task.
            self._report_step_error(exc)
        del self  # see tasks._step(): the traceback may keep this frame

    _run.__qualname__ = "Task._run"
    return _run


def handle_run(self: Any) -> None:
    """``Handle._run``: run the callback in its context, errors to the loop's handler."""
    if self._cancelled:
        return
    try:
        self._context.run(self._callback, *self._args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        self._report(exc)
    # If an exception's traceback reaches into the callback, it keeps this
    # frame (as an f_back): the frame must not keep the handle, and through
    # it the callback's task, alive past its last real reference.
    del self


handle_run.__qualname__ = "Handle._run"
handle_run.__name__ = "_run"


async def _wrap_awaitable(awaitable: Any) -> Any:
    """A coroutine awaiting *awaitable* (``ensure_future`` of a non-coroutine).

    Here, not in tasks.py: a compiled ``async def`` makes no coroutine object.
    """
    return await awaitable


def _exhausted() -> Generator[None, None, None]:
    yield


def exhausted_throw() -> Callable[..., Any]:
    """The ``throw`` of a generator that has finished: it raises what it is
    given, checked as any ``throw()`` checks it, and adds no traceback entry
    (a compiled or Python function would add its own)."""
    gen = _exhausted()
    gen.close()
    return gen.throw


def install(cls: type, methods: dict[str, Any]) -> None:
    """Set *methods* on the public class *cls* (a plain class in either build)."""
    for name, func in methods.items():
        setattr(cls, name, func)

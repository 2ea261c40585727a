"""``run`` and ``Runner``: own an event loop for the length of a program.

As asyncio's, except that the default loop is a tidal loop where asyncio's
would be its stock loop (an event-loop policy installed on purpose is still
asked, as asyncio asks it).  Like asyncio with its default factory, that
loop is also made the thread's current loop while the runner is open, so
``get_event_loop()`` finds it.  ``loop_factory``
is accepted on every version (asyncio 3.11's ``run()`` lacks it).

Ctrl-C while ``Runner.run()`` runs cancels the main task first; only a
second Ctrl-C (or a main task that swallows the cancellation) raises
KeyboardInterrupt at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import signal
import sys
import threading
from asyncio import CancelledError
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar, cast

from tidal._api.gather import gather
from tidal._core import _aio
from tidal._core.events import new_event_loop, set_event_loop
from tidal._core.tasks import all_tasks, iscoroutine

__all__ = ("Runner", "run")

_T = TypeVar("_T")

_PY312 = sys.version_info >= (3, 12)
#: How long (seconds) closing waits for the default executor's threads (3.12+).
_THREAD_JOIN_TIMEOUT = 300

_CREATED = "created"
_INITIALIZED = "initialized"
_CLOSED = "closed"


class Runner:
    """A context manager owning an event loop: run coroutines in it, then close it.

    ``run(main())`` is ``with Runner() as runner: runner.run(main())``.
    ``run()`` may be called several times; the loop and a shared context
    live until ``close()``.  *debug* sets the loop's debug mode; *loop_factory*
    makes the loop (default: a tidal loop, set as the current loop).
    """

    __slots__ = (
        "_state", "_debug", "_loop_factory", "_loop", "_context", "_interrupt_count",
        "_set_event_loop", "_watchdog",
    )

    def __init__(
        self,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], Any] | None = None,
        watchdog: float | None = None,
    ) -> None:
        self._state = _CREATED
        self._debug = debug
        # tidal's extension: report steps that block the loop longer than this.
        self._watchdog = watchdog
        self._loop_factory = loop_factory
        self._loop: Any = None
        self._context: contextvars.Context | None = None
        self._interrupt_count = 0
        self._set_event_loop = False

    def __enter__(self) -> Runner:
        self._lazy_init()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what is left, finalize async generators and the executor, close the loop."""
        if self._state is not _INITIALIZED:
            return
        loop = self._loop
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            if _PY312:
                loop.run_until_complete(loop.shutdown_default_executor(_THREAD_JOIN_TIMEOUT))
            else:
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            if self._set_event_loop:
                set_event_loop(None)
            loop.close()
            if self._watchdog is not None:
                from tidal._tools.watchdog import watch_blocking

                watch_blocking(None, loop=loop)  # its sampler stops with it
            self._loop = None
            self._state = _CLOSED

    def get_loop(self) -> Any:
        """The runner's event loop (created now if need be)."""
        self._lazy_init()
        return self._loop

    def run(
        self, coro: Coroutine[Any, Any, _T], *, context: contextvars.Context | None = None
    ) -> _T:
        """Run *coro* to completion in the runner's loop and return its result."""
        if not iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        if _aio.get_running_loop_or_none() is not None:
            # Fail fast, with a short traceback.
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        self._lazy_init()
        if context is None:
            context = self._context
        task = self._loop.create_task(coro, context=context)

        sigint_handler: Any = None
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            sigint_handler = functools.partial(self._on_sigint, main_task=task)
            try:
                signal.signal(signal.SIGINT, sigint_handler)
            except ValueError:
                # The main thread may not take signals (an embedded
                # interpreter, gh-91880): go without Ctrl-C handling.
                sigint_handler = None

        self._interrupt_count = 0
        try:
            return cast(_T, self._loop.run_until_complete(task))
        except CancelledError:
            if self._interrupt_count > 0:
                uncancel = getattr(task, "uncancel", None)
                if uncancel is not None and uncancel() == 0:
                    # Chained to the CancelledError, as asyncio does.
                    raise KeyboardInterrupt()
            raise
        finally:
            if sigint_handler is not None and signal.getsignal(signal.SIGINT) is sigint_handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _lazy_init(self) -> None:
        if self._state is _CLOSED:
            raise RuntimeError("Runner is closed")
        if self._state is _INITIALIZED:
            return
        if self._loop_factory is None:
            self._loop = _default_loop()
            if not self._set_event_loop:
                # Only once: asyncio does the same (child watchers attach here).
                set_event_loop(self._loop)
                self._set_event_loop = True
        else:
            self._loop = self._loop_factory()
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        if self._watchdog is not None:
            from tidal._tools.watchdog import watch_blocking

            watch_blocking(self._watchdog, loop=self._loop)
        self._context = contextvars.copy_context()
        self._state = _INITIALIZED

    def _on_sigint(self, signum: int, frame: FrameType | None, main_task: Any) -> None:
        self._interrupt_count += 1
        if self._interrupt_count == 1 and not main_task.done():
            main_task.cancel()
            # Wake the loop in case it sleeps in the poller with a long timeout.
            self._loop.call_soon_threadsafe(_nothing)
            return
        raise KeyboardInterrupt()


def _nothing() -> None:
    pass


def _default_loop() -> Any:
    # asyncio asks the event-loop policy.  Where that would give asyncio's
    # stock loop, tidal gives its own; a policy someone installed on purpose
    # (tidal's, a test suite's...) is honoured, as asyncio honours it.
    policy = asyncio.get_event_loop_policy()
    if type(policy) is asyncio.DefaultEventLoopPolicy:
        return new_event_loop()
    return policy.new_event_loop()


def run(
    main: Coroutine[Any, Any, _T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], Any] | None = None,
    watchdog: float | None = None,
) -> _T:
    """Run the coroutine *main* in a new event loop and return its result.

    The loop (a tidal loop unless *loop_factory* says otherwise) is closed
    afterwards, once remaining tasks are cancelled and async generators and
    the default executor are shut down.  It cannot be called while another
    loop runs in this thread.  *watchdog* (tidal's own): report, while it
    happens, any step that holds the loop longer than that many seconds
    (see ``tidal.watch_blocking``).
    """
    if _aio.get_running_loop_or_none() is not None:
        # Fail fast, with a short traceback.
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    with Runner(debug=debug, loop_factory=loop_factory, watchdog=watchdog) as runner:
        return runner.run(main)


def _cancel_all_tasks(loop: Any) -> None:
    to_cancel = all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during asyncio.run() shutdown",
                "exception": task.exception(),
                "task": task,
            })

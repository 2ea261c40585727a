"""The loop's services beside its turn, and the loop class made of both.

``LoopServices`` (async-generator hooks, the default executor) and
``BaseEventLoop``, the core loop: ``loop._LoopCore`` (the turn itself:
scheduling, running, I/O registration; compiled in the mypyc build) with
``LoopServices`` and asyncio's ``AbstractEventLoop`` as Python bases. Never
compiled: see ``BaseEventLoop``. ``tidal._core.loop`` re-exports it.
"""

from __future__ import annotations

import concurrent.futures
import socket
import sys
import warnings
import weakref
from asyncio import AbstractEventLoop
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tidal._core.bridge import shutdown_executor, wrap_future
from tidal._core.errors import call_handler, log_context
from tidal._core.loop import _HOOKABLE, _OWN_FRAMES, _LoopCore


class LoopServices(AbstractEventLoop):
    """Exception handling, async-generator finalization and the default executor."""

    # Set by BaseEventLoop.__init__.
    _asyncgens: weakref.WeakSet[Any]
    _asyncgens_shutdown_called: bool
    _default_executor: concurrent.futures.ThreadPoolExecutor | None
    _executor_shutdown_called: bool
    _debug: bool
    _exception_handler: Callable[..., object] | None

    if TYPE_CHECKING:  # BaseEventLoop's

        def _check_closed(self) -> None: ...

        def _check_callback(self, callback: Any, method: str) -> None: ...

    # -- errors (Python code: never on a hot path) ----------------------------

    def get_exception_handler(self) -> Callable[..., object] | None:
        """The custom exception handler, or None."""
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., object] | None) -> None:
        """Route errors to ``handler(loop, context)``; None restores the default."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log *context* to the 'asyncio' logger, as asyncio does."""
        log_context(self, context)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Pass *context* to the exception handler; never raises (but exits)."""
        call_handler(self, context)

    # -- tools --------------------------------------------------------------------

    def watch_blocking(
        self, threshold: float | None = 0.1, *, callback: Callable[..., object] | None = None
    ) -> None:
        """Report task steps and callbacks that hold this loop over *threshold* s (None: stop).

        Reported while they still block, with the loop thread's stack, then
        with how long they held it: to the ``tidal`` logger and *callback*.
        Costs the loop nothing (a thread samples stacks): see docs/debugging.md.
        """
        from tidal._tools.watchdog import watch_blocking

        watch_blocking(threshold, loop=self, callback=callback)

    def _socketpair(self) -> tuple[socket.socket, socket.socket]:
        return socket.socketpair()

    # -- async generators -----------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning, source=self,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator still open on this loop."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        agens = list(self._asyncgens)
        self._asyncgens.clear()
        tasks = [self.create_task(agen.aclose()) for agen in agens]
        for task, agen in zip(tasks, agens, strict=True):
            try:
                await task
            except Exception as exc:
                self.call_exception_handler({
                    "message": "an error occurred during closing of asynchronous "
                    f"generator {agen!r}",
                    "exception": exc,
                    "asyncgen": agen,
                })

    # -- executor -------------------------------------------------------------

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> Any:
        """Run ``func(*args)`` in *executor* (default: a thread pool); return a future."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        """Use *executor* (a ThreadPoolExecutor) for run_in_executor(None, ...)."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    if sys.version_info >= (3, 12):

        async def shutdown_default_executor(self, timeout: float | None = None) -> None:
            """Shut the default executor down, waiting for its threads (up to *timeout*)."""
            await shutdown_executor(self, timeout)

    else:  # 3.11's takes no timeout

        async def shutdown_default_executor(self) -> None:
            """Shut the default executor down, waiting for its threads."""
            await shutdown_executor(self, None)


#: Whether the core (loop.py) runs as Python: the pure build.
_CORE_INTERPRETED = _OWN_FRAMES
#: The loop methods whose instance-level replacement BaseEventLoop watches.
_DIVERTING = frozenset({"call_soon", *_HOOKABLE})


class BaseEventLoop(_LoopCore, LoopServices):  # type: ignore[misc]  # core signatures are asyncio's
    """tidal's loop core; I/O layers add their methods on top of it.

    *selector* (a ``selectors.BaseSelector``, as asyncio's SelectorEventLoop
    takes) makes the loop poll through it instead of tidal's own epoll poller.
    A Python class in both builds (see _LoopCore): its instances get their
    ``__dict__`` and weak references from it, which Python's deallocator clears.
    """

    if not _CORE_INTERPRETED:
        # A method set on (or deleted from) the instance, as mock.patch.object
        # does, that the compiled paths would otherwise not call: call_soon()
        # (futures and tasks, LoopBase._divert), _run_once(), _process_events(),
        # time() and call_at() (the turn and call_later(), _LoopCore._hooked).
        # Only Python-level stores come here: compiled code writes its fields
        # directly. Not in the pure build, where every store on the loop is a
        # Python one: there futures read the instance dict (futures.py).
        def __setattr__(self, name: str, value: Any) -> None:
            object.__setattr__(self, name, value)
            if name in _DIVERTING:
                self._update_diversions()

        def __delattr__(self, name: str) -> None:
            object.__delattr__(self, name)
            if name in _DIVERTING:
                self._update_diversions()

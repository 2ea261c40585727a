"""The event loop core: ready queue, timers, poller, thread wakeups, lifecycle.

One turn of the loop (``_run_once``):

1. drop cancelled timers from the top of the heap (or rebuild the heap when
   more than half of a large one is cancelled);
2. poll for I/O: without blocking if anything is ready, else until the next
   timer.  The poll is skipped entirely when work is ready and no fd but the
   wakeup fd is registered, which is the common case for pure-coroutine code;
   and, work being ready, in a turn right after one that polled (not the
   first turn of a run nor its last): asyncio's turn polls again at once
   there, for the tasks the last I/O woke, and almost always finds nothing
   (a request/response exchange polled twice per message). I/O that did
   arrive waits one turn, which is no order asyncio promises: when a poll
   sees an event is timing; the order of what is ready is unchanged;
3. move due timers onto the ready queue;
4. run exactly the items that were ready when the turn started.

The ready queue is a deque of objects with a ``_run()`` method: Handles,
TimerHandles and Tasks side by side (see ``tasks.py``), in FIFO order.

Thread wakeups: ``call_soon_threadsafe`` from another thread appends to a
deque of its own (atomic under the GIL) and writes to the wakeup fd only if
the loop is, or is about to be, blocked in the poller.  The loop sets
``_polling`` *before* it checks the queues, so either it sees the new item or
the writer sees the flag.  Each turn moves at most ``_THREADSAFE_BATCH`` of
those calls onto the ready queue, so under a flood from other threads timers
and I/O still get a turn every batch; and a thread that is more than
``_THREADSAFE_BACKLOG`` calls ahead gives the GIL away every 256 calls (asyncio's
threads do so anyway, in the self-pipe write every call makes; tidal's
writes nothing while the loop is busy, so a flood could starve the loop of
the GIL itself).  Called from the loop's own thread it is call_soon(), order
included.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import heapq
import os
import sys
import threading
import time
import warnings
import weakref
from asyncio import base_events as _aio_base_events
from asyncio import coroutines as _coroutines_module
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from tidal._core import _aio
from tidal._core.errors import asyncio_logger
from tidal._core.fdtable import FdTable
from tidal._core.futures import _PENDING, Future, _Future, failure
from tidal._core.handles import Handle, TimerHandle, _Handle, _TimerHandle
from tidal._core.native import mypyc_attr
from tidal._core.poller import Poller, SelectorPoller
from tidal._core.tasks import _Task, new_task, run_task
from tidal._core.timers import SET_RESULT_UNLESS_CANCELLED, FutureTimer

#: The methods whose replacement (on the instance, or by a subclass) the turn
#: and call_later() must call: see _LoopCore._hooked.
_HOOKABLE: Final[tuple[str, ...]] = ("_run_once", "_process_events", "time", "call_at")
#: Longest single wait in the poller, as asyncio (some kernels reject more).
MAXIMUM_SELECT_TIMEOUT: Final = 24 * 3600
_MIN_SCHEDULED_TIMER_HANDLES: Final = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION: Final = 0.5
#: Most calls from other threads moved onto the ready queue per turn.
_THREADSAFE_BATCH: Final = 512
#: Backlog past which a calling thread gives the GIL away (every 256th call).
_THREADSAFE_BACKLOG: Final = 4 * _THREADSAFE_BATCH
_get_ident: Final = threading.get_ident
#: Bound here so that a loop finalized late in interpreter shutdown still warns.
_warn: Final = warnings.warn
_sleep: Final = time.sleep
#: Set by tidal._tools.trace while it traces: runs each turn's ready items in
#: place of the plain loop.  Loops read it with their debug flag (``_slow_turn``).
_trace_runner: Callable[[Any], None] | None = None
#: True in the compiled build while nothing needs a frame per ready item: the
#: loop then runs plain tasks and handles through their compiled code, which
#: pushes no frame (asyncio's C Task pushes none either). The watchdog finds
#: a step by its _run frame, so it turns this off while it watches (and the
#: pure build has no frame-free code to call).
NATIVE_ITEMS: Final[bool] = not hasattr(run_task, "__code__")
run_native: bool = NATIVE_ITEMS
#: The loops running now, for the watchdog (which thread runs which loop).
running_loops: Final[weakref.WeakSet[Any]] = weakref.WeakSet()

_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
_monotonic: Final = time.monotonic
# Each class's own __new__ for the constructor-free fast paths: a compiled
# (mypyc) class refuses object.__new__; in the pure build these are object.__new__.
_new_handle: Final[Any] = _Handle.__new__
_new_timer: Final[Any] = _TimerHandle.__new__
_new_future: Final[Any] = _Future.__new__
_new_future_timer: Final[Any] = FutureTimer.__new__
_copy_context: Final = contextvars.copy_context
#: deque.append as a descriptor: compiled, ``ready.append(x)`` looks the method up by name.
_deque_append: Final = deque.append
_deque_popleft: Final = deque.popleft
#: asyncio.coroutines, read at each loop creation (its _is_debug_mode is private).
_aio_coroutines: Final[Any] = _coroutines_module


#: asyncio's own done-callback for run_until_complete(), not a copy: anyio's
#: find_root_task() recognises the task run_until_complete() runs by this
#: function's identity among its callbacks.  It stops fut.get_loop() unless
#: the future ended in SystemExit/KeyboardInterrupt.
_aio_base_events_module: Final[Any] = _aio_base_events
_run_until_complete_cb: Final[Any] = _aio_base_events_module._run_until_complete_cb


def _format_handle(handle: Any) -> str:
    # Name the task, not an internal callback, in slow-callback warnings.
    cb = getattr(handle, "_callback", None)
    owner = getattr(cb, "__self__", None)
    if owner is not None and hasattr(owner, "_coro"):
        return repr(owner)
    return str(handle)


#: Whether this module's functions push frames (not when compiled): only then
#: does a debug-mode origin (``_source_traceback``) end in one of ours to drop.
_OWN_FRAMES: Final[bool] = hasattr(_format_handle, "__code__")


@mypyc_attr(allow_interpreted_subclasses=True)  # every loop class subclasses it
class _LoopCore(FdTable):
    """The compiled part of BaseEventLoop: the turn, scheduling, timers, lifecycle.

    No Python base class of its own (FdTable and LoopBase are native): a native
    class under one (asyncio's AbstractEventLoop) gets that base's managed
    weak-reference list, which mypyc's deallocator never clears, so a weak
    reference to a freed loop stayed alive and its callbacks never ran
    (anyio's RunVar, keyed weakly by loop, saw the last loop's values).
    BaseEventLoop adds the Python bases.
    """

    def __init__(self, selector: Any = None) -> None:
        # Every loop is a Python subclass's instance, with a __dict__ (and not
        # `or {}`: the dict is empty yet, and must be the instance's own).
        attrs = getattr(self, "__dict__", None)
        self._tidal_attrs = {} if attrs is None else attrs
        self._ready: deque[Any] = deque()
        #: The same deque, under a name foreign code will not collide with;
        #: futures look for it to know they may append to it directly.
        self._tidal_ready: deque[Any] = self._ready
        #: call_soon_threadsafe() arrivals from other threads (see the module docstring).
        self._threadsafe: deque[Any] = deque()
        #: (when, timer) pairs. On an exact tie of ``when`` the pair falls back
        #: to comparing the timers, which compare by deadline: the order among
        #: equal deadlines is arbitrary, as in asyncio.
        #: Any, not float: a deadline stays the object given (the test loop's
        #: carry a sequence number that orders equal deadlines).
        self._scheduled: list[tuple[Any, Any]] = []
        self._timer_cancelled_count = 0
        self._closed = False
        self._stopping = False
        self._polling = False
        #: The last turn polled (see step 2 above); False when a run starts.
        self._polled_last = False
        self._thread_id: int | None = None
        #: run_native's item in progress and a count of them: how the watchdog
        #: finds a step that has no _run frame (one begun before it watched).
        self._running_item: Any = None
        self._running_count = 0
        self._debug = False
        #: Whether futures and tasks must go through call_soon() (LoopBase):
        #: a subclass's own; BaseEventLoop.__setattr__ follows the instance's.
        self._divert = False
        #: Whether _run_once(), _process_events(), time() or call_at() is set
        #: on the instance or a subclass's own: the turn and call_later() then
        #: look them up on the instance, as asyncio's do. Otherwise they call
        #: _LoopCore's directly: an interpreted subclass's instance (every
        #: loop) gets mypyc's glue for each compiled self-call, a Python-level
        #: method call (~350 instructions).
        self._hooked = False
        self._update_diversions()
        #: debug mode or tracing: the one flag the plain turn checks (see _run_once).
        self._slow_turn = False
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._exception_handler: Callable[..., object] | None = None
        self._task_factory: Callable[..., Any] | None = None
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._current_handle: Any = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None
        self.slow_callback_duration: Any = 0.1  # kept as given (an int stays one)
        # Any: the test loop (tidal.testing) puts a poller of its own here.
        self._poller: Any = (
            Poller() if selector is None else SelectorPoller(selector)
        )
        self._fds = {}
        self._wakeup_r, self._wakeup_w = self._make_wakeup_fds()
        self._poller.register(self._wakeup_r, self._poller.IN)
        #: The poller's event bits, as native ints (a poller put in its place
        #: later, as the test loop's, reports the same ones).
        self._readable = self._poller.readable
        self._writable = self._poller.writable
        # asyncio's own switch (-X dev, PYTHONASYNCIODEBUG), asked at each loop
        # creation as asyncio's loop does, so whoever overrides it is obeyed.
        self.set_debug(_aio_coroutines._is_debug_mode())

    def __repr__(self) -> str:
        return (
            f"<{self.__class__.__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    # -- thread wakeups ---------------------------------------------------

    @staticmethod
    def _make_wakeup_fds() -> tuple[int, int]:
        eventfd = getattr(os, "eventfd", None)
        if eventfd is not None:
            fd = eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            return fd, fd
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        return r, w

    # -- scheduling ---------------------------------------------------------

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> Handle:
        """Run ``callback(*args)`` on the next turn of the loop."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle = _Handle(callback, args, self, context)
            if _OWN_FRAMES and handle._source_traceback:
                del handle._source_traceback[-1]
        else:
            # Handle.__init__'s stores without the call: this is the hottest way to schedule.
            handle = _new_handle(_Handle)
            handle._callback = callback
            handle._args = args
            handle._loop = self
            handle._context = _copy_context() if context is None else context
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        _deque_append(self._ready, handle)
        return handle

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> Handle:  # type: ignore[override]
        """Like call_soon(), callable from any thread; wakes the loop if it sleeps."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
            handle = _Handle(callback, args, self, context)
            if _OWN_FRAMES and handle._source_traceback:
                del handle._source_traceback[-1]
        else:  # as in call_soon(): a call would be a tenth of this method's cost
            handle = _new_handle(_Handle)
            handle._callback = callback
            handle._args = args
            handle._loop = self
            handle._context = _copy_context() if context is None else context
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        thread_id = self._thread_id
        if thread_id is None or thread_id == _get_ident():
            _deque_append(self._ready, handle)
        else:
            threadsafe = self._threadsafe
            _deque_append(threadsafe, handle)  # atomic: one C call under the GIL
            backlog = len(threadsafe)
            if backlog > _THREADSAFE_BACKLOG and not backlog & 0xFF:
                # The loop is far behind: let it have the GIL, once every 256
                # calls (a switch per call would halve the calling thread's
                # throughput; see the module docstring).
                _sleep(0)
        if self._polling:
            this: Any = self  # on the instance, as asyncio's (tests patch it there)
            this._write_to_self()
        return handle

    def call_later(  # type: ignore[override]
        self, delay: Any, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> Any:  # a patched call_at() may return anything
        """Run ``callback(*args)`` after *delay* seconds."""
        if delay is None:
            raise TypeError("delay must not be None")
        if not self._hooked:  # time() and call_at() are _LoopCore's: call them directly
            timer = _LoopCore._call_at(self, _monotonic() + delay, callback, args, context)
        else:
            # Looked up on the instance, as asyncio's call_later does: a patched
            # time() or call_at() must be reached, with the arguments asyncio gives it.
            this: Any = self
            timer = this.call_at(this.time() + delay, callback, *args, context=context)
        # Only a debug loop records origins (_debug first: a FutureTimer's
        # _source_traceback is a property, a Python call in the pure build).
        if _OWN_FRAMES and self._debug and timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def call_at(  # type: ignore[override]
        self, when: Any, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> Any:  # a TimerHandle or a FutureTimer: no return check in mypyc
        """Run ``callback(*args)`` at loop time *when*."""
        timer = _LoopCore._call_at(self, when, callback, args, context)
        if _OWN_FRAMES and self._debug and timer._source_traceback:  # as in call_later()
            del timer._source_traceback[-1]
        return timer

    def _call_at(
        self, when: Any, callback: Callable[..., object], args: tuple[Any, ...], context: Any
    ) -> Any:
        # call_at() with its arguments as a tuple, which call_later() calls
        # directly (compiled, a starred call to call_at() would be a generic one;
        # the pure build pays a frame for it, 2 % of a timer).
        # *when* and call_later()'s *delay* are Any: a compiled float parameter
        # would refuse None before asyncio's own error, and would convert a
        # float subclass (the test loop's ordered deadlines) to a plain float.
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer: Any  # a TimerHandle or a FutureTimer (no common native base)
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
            timer = _TimerHandle(when, callback, args, self, context)
            if _OWN_FRAMES and timer._source_traceback:
                del timer._source_traceback[-1]  # this frame; the caller drops its own
        elif (
            callback is SET_RESULT_UNLESS_CANCELLED  # asyncio's sleep(): see timers.py
            and context is None
            and len(args) == 2
            and type(args[0]) is _Future
        ):
            timer = _new_future_timer(FutureTimer)
            timer._fut = args[0]
            timer._result = args[1]
            timer._when = when
            timer._loop = self
        else:  # TimerHandle.__init__ without the two calls, as in call_soon()
            # Typed: compiled, the stores are native, not setattr() calls.
            handle: TimerHandle = _new_timer(_TimerHandle)
            handle._callback = callback
            handle._args = args
            handle._loop = self
            handle._context = _copy_context() if context is None else context
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
            handle._when = when
            _heappush(self._scheduled, (when, handle))
            handle._scheduled = True
            return handle
        _heappush(self._scheduled, (when, timer))
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:  # FutureTimers too
        if handle._scheduled:
            self._timer_cancelled_count += 1

    def time(self) -> float:
        """The loop's clock: ``time.monotonic()``."""
        return _monotonic()

    def create_future(self) -> Any:
        """A new tidal Future bound to this loop."""
        if self._debug:  # the constructor records where the future was made
            return _Future(loop=self)
        # Future.__init__'s stores for a tidal loop, without the call: 250 -> 120 ns.
        # Typed: compiled, the stores below are then native, not setattr() calls.
        fut: Future = _new_future(_Future)
        fut._loop = self
        fut._core = self
        fut._state = _PENDING
        fut._result = None
        fut._error = None
        fut._cbs = None
        fut._asyncio_future_blocking = False
        fut._rare = None
        return fut

    def create_task(  # type: ignore[override]  # 3.13 typeshed: **kwargs
        self, coro: Any, *, name: Any = None, context: Any = None
    ) -> Any:
        """Schedule *coro* as a Task (through the task factory, if one is set)."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        factory = self._task_factory
        if factory is None:
            if not self._debug:
                return new_task(self, coro, name, context)
            task: Any = _Task(coro, loop=self, name=name, context=context)
            if _OWN_FRAMES and task._source_traceback:
                del task._source_traceback[-1]
            return task
        if context is None:
            task = factory(self, coro)
        else:
            task = factory(self, coro, context=context)
        if name is not None:
            try:
                set_name = task.set_name
            except AttributeError:
                warnings.warn(
                    "Task.set_name() was added in Python 3.8, the method support "
                    "will be mandatory for third-party task implementations since 3.13.",
                    DeprecationWarning, stacklevel=3,
                )
            else:
                set_name(name)
        return task

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        """Use ``factory(loop, coro[, context=])`` to make tasks; None for the default."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        """The task factory, or None."""
        return self._task_factory

    # -- running ------------------------------------------------------------

    def _update_diversions(self) -> None:
        # _divert and _hooked from the class and the instance: at creation, and
        # after a method was set on or deleted from the instance
        # (BaseEventLoop.__setattr__).
        # Pure build: no __setattr__ watches the instance (it would tax every
        # store on the loop), so futures look at the instance dict themselves
        # and the turn always looks its methods up (it costs no more there).
        own = self._tidal_attrs
        cls = type(self)
        self._divert = "call_soon" in own or cls.call_soon is not _LoopCore.call_soon
        self._hooked = _OWN_FRAMES or any(
            name in own or getattr(cls, name) is not getattr(_LoopCore, name)
            for name in _HOOKABLE
        )

    def _run_once(self) -> None:
        # time() and _process_events() are looked up on the instance, as in
        # asyncio's turn, once one is set there (_hooked: the tracer patches
        # _process_events on the loop, and a compiled self-call would not see
        # an instance attribute); otherwise they are compiled self-calls.
        this: Any = self
        hooked = self._hooked
        scheduled = self._scheduled
        if scheduled:
            count = len(scheduled)
            if (
                count > _MIN_SCHEDULED_TIMER_HANDLES
                and self._timer_cancelled_count / count > _MIN_CANCELLED_TIMER_HANDLES_FRACTION
            ):
                self._purge_cancelled_timers()
                scheduled = self._scheduled
            else:
                while scheduled and scheduled[0][1]._cancelled:
                    self._timer_cancelled_count -= 1
                    _heappop(scheduled)[1]._scheduled = False

        ready = self._ready
        threadsafe = self._threadsafe
        if threadsafe:
            _LoopCore._take_threadsafe(self)  # not a by-name self-call (see _hooked)
        if ready or self._stopping:
            if self._fds:
                if self._polled_last and not self._stopping:
                    self._polled_last = False  # (see the module docstring, step 2)
                else:
                    self._polled_last = True
                    if hooked:
                        this._process_events(self._poller.poll(0))
                    else:
                        FdTable._process_events(self, self._poller.poll(0))
        else:
            self._polling = True
            if ready or threadsafe:
                timeout: float | None = 0
            elif scheduled:
                now = this.time() if hooked else _monotonic()
                timeout = min(max(0.0, scheduled[0][0] - now), MAXIMUM_SELECT_TIMEOUT)
            else:
                timeout = None
            events = self._poller.poll(timeout)
            self._polling = False
            self._polled_last = True
            if hooked:
                this._process_events(events)
            else:
                FdTable._process_events(self, events)

        if scheduled:
            end = (this.time() if hooked else _monotonic()) + self._clock_resolution
            while scheduled and scheduled[0][0] < end:
                timer = _heappop(scheduled)[1]
                timer._scheduled = False
                _deque_append(ready, timer)

        if self._slow_turn:
            runner = _trace_runner
            if runner is not None:
                runner(self)
                return
            if self._debug:
                self._run_ready_debug()
                return
            self._slow_turn = False  # tracing has stopped
        if run_native:
            for _ in range(len(ready)):
                item = _deque_popleft(ready)
                self._running_count += 1
                self._running_item = item
                cls = type(item)
                if cls is _Task:
                    run_task(item)
                elif cls is _Handle or cls is _TimerHandle:
                    handle: Handle = item
                    handle._run()  # the compiled method: see run_native
                else:
                    item._run()
            self._running_item = None
            return
        popleft = ready.popleft
        for _ in range(len(ready)):
            popleft()._run()

    def _take_threadsafe(self) -> None:
        # Calls from other threads join the ready queue, a bounded batch a turn.
        threadsafe = self._threadsafe
        ready = self._ready
        for _ in range(min(len(threadsafe), _THREADSAFE_BATCH)):
            _deque_append(ready, _deque_popleft(threadsafe))

    def _run_ready_debug(self) -> None:
        ready = self._ready
        for _ in range(len(ready)):
            item = ready.popleft()
            self._current_handle = item
            try:
                t0 = self.time()
                item._run()
                dt = self.time() - t0
                if dt >= self.slow_callback_duration:
                    asyncio_logger().warning(
                        "Executing %s took %.3f seconds", _format_handle(item), dt
                    )
            finally:
                self._current_handle = None
        item = None  # a traceback may keep this frame: do not keep the last item too

    def _purge_cancelled_timers(self) -> None:
        kept = []
        for entry in self._scheduled:
            if entry[1]._cancelled:
                entry[1]._scheduled = False
            else:
                kept.append(entry)
        heapq.heapify(kept)
        self._scheduled = kept
        self._timer_cancelled_count = 0

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if _aio.get_running_loop_or_none() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def run_forever(self) -> None:
        """Run until stop() is called."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_hooks = sys.get_asyncgen_hooks()
        this: Any = self
        try:
            self._thread_id = threading.get_ident()
            running_loops.add(self)
            sys.set_asyncgen_hooks(
                firstiter=this._asyncgen_firstiter_hook,  # LoopServices'
                finalizer=this._asyncgen_finalizer_hook,
            )
            _aio.set_running_loop(self)
            self._polled_last = False
            while True:
                if self._hooked:
                    this._run_once()  # the instance's or a subclass's, as asyncio's
                else:
                    _LoopCore._run_once(self)
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            self._running_item = None
            running_loops.discard(self)
            _aio.set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_hooks)

    def run_until_complete(self, future: Any) -> Any:
        """Run until *future* (a future, task or coroutine) is done; return its result."""
        self._check_closed()
        self._check_running()
        from tidal._core.futures import isfuture
        from tidal._core.tasks import ensure_future

        new_task = not isfuture(future)
        future = ensure_future(future, loop=self)
        if new_task:
            # An exception here is re-raised to the caller: nothing to log.
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        this: Any = self  # on the instance, as asyncio's (tests patch it there)
        try:
            this.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # mark it retrieved: it propagates from here
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        error = failure(future)
        if error is not None:
            raise error
        return future.result()

    def stop(self) -> None:
        """Stop after the current turn (all callbacks already ready still run)."""
        self._stopping = True

    def is_running(self) -> bool:
        """True while run_forever() is active."""
        return self._thread_id is not None

    def is_closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def close(self) -> None:
        """Close the loop: drop pending callbacks, release the poller and executor."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            asyncio_logger().debug("Close %r", self)
        self._closed = True
        self._ready.clear()
        self._threadsafe.clear()
        self._scheduled.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._fds.clear()
        self._poller.close()
        os.close(self._wakeup_r)
        if self._wakeup_w != self._wakeup_r:
            os.close(self._wakeup_w)

    def __del__(self) -> None:  # mypyc compiles no __del__ with a default argument
        if not getattr(self, "_closed", True):
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # -- debug ----------------------------------------------------------------

    def get_debug(self) -> bool:
        """True in debug mode."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Turn debug mode on or off (slow-callback warnings, thread checks...)."""
        self._debug = enabled
        self._slow_turn = enabled or _trace_runner is not None
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(10)
        else:
            saved = self._coroutine_origin_tracking_saved_depth
            sys.set_coroutine_origin_tracking_depth(saved or 0)
        self._coroutine_origin_tracking_enabled = enabled

    def _check_thread(self) -> None:
        if self._thread_id is None:
            return
        if threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    def _check_callback(self, callback: Any, method: str) -> None:
        import inspect

        from tidal._core.tasks import iscoroutine

        if iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")


# The loop class itself is Python code (see _LoopCore), defined beside its
# other Python base; imported last: loopservices imports _LoopCore from here.
from tidal._core.loopservices import BaseEventLoop as BaseEventLoop  # noqa: E402

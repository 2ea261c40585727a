"""Blocking-call reports: a task step or callback that holds its loop too long.

Opt-in (``tidal.watch_blocking()``, ``loop.watch_blocking()``,
``TIDAL_WATCHDOG=SECONDS``, ``python -m tidal run --watchdog``).  While a step
is still blocking, the report names the task (or the callback), shows the
loop thread's stack at that moment, and once the step ends, how long it
held the loop.  Reports go to the ``tidal`` logger and, if given, to a
callback (called in the watchdog's thread).

How it knows, at no cost to the loop: one daemon thread samples every
thread's stack (``sys._current_frames()``) a few times per threshold.  A
loop runs each ready item by calling its ``_run()`` (as asyncio's loop
does), and every kind of item tidal queues (handles, tasks, I/O waiters,
timers, done-notices) has a ``_run`` that is Python code in both builds: the
outermost frame of one of those known ``_run`` functions *is* the step in
progress (its ``self`` knows the loop), and a Python frame object stays the
same object for as long as that call lasts.  The loop's own housekeeping
(polling, timers, I/O events) runs outside any item's ``_run``, so it is
never a step; nor does it matter whether the loop itself is compiled (a
compiled ``_run_once`` pushes no frame).  The same frame seen for longer
than the threshold is a step holding the loop.  The loop itself does
nothing more per step or per turn; the price is the sampling thread's few
microseconds per sample (and a GIL hand-over when the loop is busy), and,
in the compiled build, the frame of each task's and handle's ``_run``,
which the compiled loop otherwise skips (``loop.run_native``) while nothing
is watched.  It works on asyncio's own loop too (its ``Handle._run``).

Samples come every half threshold while no step is long (a step that lasts
a whole threshold spans two samples at that pace, so none is missed), every
twentieth once a step has outlasted one interval, and every eighth once it
has been reported; durations are measured between samples (``resolution``
in the report: up to a quarter of the threshold).
"""

from __future__ import annotations

import asyncio.events
import logging
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from tidal._core import _aio, interpreted
from tidal._core import loop as _loop_module
from tidal._core.plumbing import _INTERNAL_CODES

__all__ = ("DEFAULT_THRESHOLD", "BlockingReport", "watch_blocking", "watching")

DEFAULT_THRESHOLD = 0.1
logger = logging.getLogger("tidal")

def _item_run_codes() -> set[CodeType]:
    # Every ready item's _run, as Python code: the core's (interpreted.py,
    # installed on the public classes in both builds), asyncio's Handle, and
    # any class of tidal's own that defines a _run (a compiled one has no
    # __code__ and pushes no frame: it is left out).
    from tidal._api import _notify, gather, sleep
    from tidal._core import timers
    from tidal._io import sock

    codes = {interpreted.handle_run.__code__, _task_run_code, asyncio.events.Handle._run.__code__}
    for module in (timers, sock, _notify, sleep, gather):
        for value in vars(module).values():
            run = getattr(value, "__dict__", {}).get("_run") if isinstance(value, type) else None
            code = getattr(run, "__code__", None)
            if isinstance(code, CodeType):
                codes.add(code)
    return codes


_task_run_code: CodeType = interpreted.make_task_run(lambda task, arg: None).__code__
#: The frames of a ready item's ``_run()``: the outermost one is the step.
_STEP_CODES = _item_run_codes()
#: Their names, looked at first: a str caches its hash, a code object computes
#: its own (over its constants and names) on every set lookup, ~2 us a frame,
#: paid while the sampler holds the GIL the busy loop waits for.
_STEP_NAMES = {code.co_name for code in _STEP_CODES}
#: Frames left out of a report's stack: the loop's and tidal's plumbing.
_PLUMBING = {asyncio.events.Handle._run.__code__}
_MAX_DEPTH = 500


class BlockingReport:
    """One report: a step is holding its loop (``ended`` False) or has released it."""

    __slots__ = ("loop", "task", "what", "held", "ended", "stack", "thread_id", "resolution")

    def __init__(
        self, loop: Any, task: Any, what: str, held: float, ended: bool,
        stack: traceback.StackSummary, thread_id: int, resolution: float,
    ) -> None:
        self.loop = loop
        #: The task whose step it is, or None for a plain callback.
        self.task = task
        #: "task 'name' <repr>" or the callback's handle.
        self.what = what
        #: Seconds the step has held (or, once ended, held) the loop.
        self.held = held
        self.ended = ended
        #: The loop thread's stack when the step was first found blocking.
        self.stack = stack
        self.thread_id = thread_id
        #: How precise ``held`` is (the sampling interval).
        self.resolution = resolution

    def format(self) -> str:
        """The report as the ``tidal`` logger writes it."""
        if self.ended:
            return f"{self.what} held the loop for {self.held:.3f} s (±{self.resolution:.3f})"
        head = f"{self.what} has held the loop for {self.held:.3f} s and is still running"
        if not self.stack:
            return f"{head}, in C code (no Python frame above the loop's)"
        lines = "".join(self.stack.format()).rstrip("\n")
        return f"{head}; the loop thread's stack (most recent call last):\n{lines}"

    def __repr__(self) -> str:
        state = "ended" if self.ended else "running"
        return f"<BlockingReport {state} held={self.held:.3f} {self.what}>"


Callback = Callable[[BlockingReport], object]

# Settings: a default for every loop, and per-loop ones; (threshold, callback).
_lock = threading.Lock()
_default: list[tuple[float, Callback | None] | None] = [None]
_per_loop: weakref.WeakKeyDictionary[Any, tuple[float, Callback | None] | None] = (
    weakref.WeakKeyDictionary()
)
# The sampler thread and the event that stops it: a stopped sampler must not
# report into a setting made after it was stopped.
_thread: list[tuple[threading.Thread, threading.Event] | None] = [None]
#: Set when a setting changes or watching stops: wakes the sampler early.
_changed = threading.Event()


def watch_blocking(
    threshold: float | None = DEFAULT_THRESHOLD,
    *,
    loop: Any = None,
    callback: Callback | None = None,
) -> None:
    """Report task steps and callbacks that hold a loop longer than *threshold* seconds.

    Without *loop*, for every loop in the process (tidal's and asyncio's);
    with it, for that loop only, overriding the default.  *threshold* None
    stops watching (that loop, or by default).  Each report is logged as a
    warning on the ``tidal`` logger and passed to *callback*, called in the
    watchdog's thread, first while the step still blocks (with the loop
    thread's stack), then when it ends (with how long it held the loop).
    When nothing is watched any more, the sampler thread delivers the end
    reports it owes and exits before this returns.
    """
    if threshold is not None and not threshold > 0:
        raise ValueError(f"threshold must be a positive number of seconds, not {threshold!r}")
    setting = None if threshold is None else (float(threshold), callback)
    stopped: threading.Thread | None = None
    with _lock:
        if loop is None:
            _default[0] = setting
        else:
            _per_loop[loop] = setting
        # The compiled loop runs tasks and handles without a _run frame, which
        # is how a step is found: with frames while anything is watched.
        _loop_module.run_native = _loop_module.NATIVE_ITEMS and not _thresholds()
        running = _thread[0]
        if running is not None and not running[0].is_alive():
            running = _thread[0] = None
        if running is None:
            if _thresholds():
                stop = threading.Event()
                thread = threading.Thread(
                    target=_sample_forever, args=(stop, _changed), name="tidal-watchdog",
                    daemon=True,
                )
                _thread[0] = (thread, stop)
                thread.start()
        elif _thresholds():
            # A sampler asleep for a longer threshold's interval must see a
            # shorter one now, not after that interval (a step could end unseen).
            _changed.set()
        else:
            # Nothing is watched any more: the sampler delivers the end reports
            # it owes and exits before this returns.
            _thread[0] = None
            running[1].set()
            _changed.set()
            stopped = running[0]
    if stopped is not None and stopped is not threading.current_thread():
        stopped.join()


def _thresholds() -> list[float]:
    # Under _lock, at every wake-up: a WeakKeyDictionary's values() costs
    # several microseconds even when it is empty, so only a non-empty one is read.
    default = _default[0]
    found = [] if default is None else [default[0]]
    if len(_per_loop):
        found += [s[0] for s in _per_loop.values() if s is not None]
    return found


def watching(loop: Any = None) -> float | None:
    """The threshold in effect for *loop* (default: the process-wide one), or None."""
    with _lock:
        setting = _setting_for(loop)
    return None if setting is None else setting[0]


def _setting_for(loop: Any) -> tuple[float, Callback | None] | None:
    if loop is not None:
        try:
            if loop in _per_loop:
                return _per_loop[loop]
        except TypeError:  # an unhashable loop: only the default applies
            pass
    return _default[0]


class _Step:
    """What the sampler knows of one thread's step in progress."""

    __slots__ = ("frame", "before", "first", "last", "reported", "loop", "task", "what", "setting")

    def __init__(self, frame: Any, before: float, now: float) -> None:
        # The step's _run frame (the same object while it runs), or for one
        # with no such frame its loop's (loop, count, item).
        self.frame = frame
        self.before = before  # the previous sample: the step began after it
        self.first = now
        self.last = now
        self.reported = False
        self.loop: Any = None
        self.task: Any = None
        self.what = ""
        self.setting: tuple[float, Callback | None] | None = None

    def started(self) -> float:
        return (self.before + self.first) / 2


def _sample_forever(stop: threading.Event, changed: threading.Event) -> None:
    me = threading.get_ident()
    steps: dict[int, _Step] = {}
    previous = time.monotonic()
    while True:
        with _lock:
            thresholds = [] if stop.is_set() else _thresholds()
            if not thresholds and _thread[0] is not None and _thread[0][1] is stop:
                _thread[0] = None  # a new setting starts a new thread
        if not thresholds:
            # Steps reported as blocking get their end report, as of the last
            # sample that saw them.
            for ident, step in steps.items():
                _end(step, step.last, ident)
            return
        shortest = min(thresholds)
        # Coarse while every step is short: each sample costs a busy loop a GIL
        # hand-over (~100 us on a VM, where the loop thread's wake-up is an
        # IPI), so half the threshold: a step lasting a whole threshold still
        # spans two samples. Fine once a step outlasts an interval, so that its
        # report comes on time; once reported, an eighth of the threshold until
        # it ends: its end is still timed to that, with two fifths of the
        # hand-overs that slow the step (a long one pays hundreds).
        # (A reported step keeps its own threshold's pace: its setting may be gone.)
        reported = [s.setting[0] for s in steps.values() if s.reported and s.setting]
        interval = min(max(shortest / 2, 0.001), 0.5)
        if any(step.last > step.first and not step.reported for step in steps.values()):
            interval = min(max(shortest / 20, 0.001), 0.05)
        elif reported:
            interval = min(interval, max(min(reported) / 8, 0.001), 0.125)
        if changed.wait(interval):
            changed.clear()
            continue  # a setting changed, or watching stopped: look again first
        now = time.monotonic()
        try:
            _sample(me, steps, previous, now)
        except Exception:  # the watchdog must outlive any oddity it meets
            logger.exception("tidal watchdog: sampling failed")
        previous = now


def _sample(me: int, steps: dict[int, _Step], previous: float, now: float) -> None:
    frames = sys._current_frames()
    for ident in list(steps):
        if ident not in frames:
            _end(steps.pop(ident), now, ident)
    native = _native_steps()
    for ident, top in frames.items():
        if ident == me:
            continue
        found = _find_step(top)
        item: Any = found
        if found is None:
            item = native.get(ident)  # a compiled loop's step without a _run frame
        step = steps.get(ident)
        if step is not None and step.frame != item:
            _end(steps.pop(ident), now, ident)
            step = None
        if item is None:
            continue
        if step is None:
            step = steps[ident] = _Step(item, previous, now)
            continue
        step.last = now
        if step.reported:
            continue
        if step.setting is None:
            loop = item[0] if found is None else _loop_of(found.f_locals.get("self"))
            with _lock:
                step.setting = _setting_for(loop)
            step.loop = loop
        setting = step.setting
        if setting is None or now - step.started() < setting[0]:
            continue
        step.reported = True
        task = _aio.current_tasks.get(step.loop) if step.loop is not None else None
        step.task = task
        runner = item[2] if found is None else found.f_locals.get("self")
        step.what = _describe(task, runner)
        report = BlockingReport(
            step.loop, task, step.what, now - step.started(), False,
            _stack(top, found), _native_id(ident), (step.first - step.before) / 2,
        )
        _deliver(report, setting[1])


def _find_step(top: FrameType) -> FrameType | None:
    # The outermost frame of a ready item's _run(), or None (no step: the loop
    # polls, runs its housekeeping, or this thread runs no loop).
    found: FrameType | None = None
    frame: FrameType | None = top
    for _ in range(_MAX_DEPTH):
        if frame is None:
            break
        code = frame.f_code
        if code.co_name in _STEP_NAMES and code in _STEP_CODES:
            found = frame
        frame = frame.f_back
    return found


def _native_steps() -> dict[int, tuple[Any, int, Any]]:
    # Thread -> (loop, count, item) for each compiled loop running an item
    # without a _run frame (loop.run_native): a step begun before watching
    # started. The count tells one step of a task from its next.
    found: dict[int, tuple[Any, int, Any]] = {}
    for loop in list(_loop_module.running_loops):
        item = loop._running_item
        ident = loop._thread_id
        if item is not None and ident is not None:
            found[ident] = (loop, loop._running_count, item)
    return found


def _loop_of(item: Any) -> Any:
    # The loop a ready item runs on: every core item keeps it as _loop; a
    # done-notice or a gather child's entry through the future it serves.
    loop = getattr(item, "_loop", None)
    if loop is not None:
        return loop
    for name in ("_future", "_outer"):
        fut = getattr(item, name, None)
        if fut is not None:
            return getattr(fut, "_loop", None)
    return None


def _end(step: _Step, now: float, ident: int) -> None:
    # *now*: the first sample that no longer saw the step.
    if not step.reported or step.setting is None:
        return
    held = (step.last + now) / 2 - step.started()
    resolution = ((step.first - step.before) + (now - step.last)) / 2
    report = BlockingReport(
        step.loop, step.task, step.what, held, True, traceback.StackSummary(),
        _native_id(ident), resolution,
    )
    _deliver(report, step.setting[1])


def _describe(task: Any, handle: Any) -> str:
    # *handle*: the ready item whose step it is.
    if task is not None:
        try:
            return f"task {task.get_name()!r} {task!r}"
        except Exception:
            return "a task"
    try:
        return f"callback {handle!r}"
    except Exception:
        return "a callback"


def _stack(top: FrameType, item: FrameType | None) -> traceback.StackSummary:
    # The loop thread's frames above the step's _run (or, with no _run frame,
    # all of them), plumbing left out.
    frames: list[FrameType] = []
    frame: FrameType | None = top
    while frame is not None and frame is not item:
        if frame.f_code not in _INTERNAL_CODES and frame.f_code not in _PLUMBING:
            frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return traceback.StackSummary.extract(((f, f.f_lineno) for f in frames), lookup_lines=True)


def _native_id(ident: int) -> int:
    active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
    thread = dict(active).get(ident)
    native = getattr(thread, "native_id", None)
    return native if isinstance(native, int) else 0


def _deliver(report: BlockingReport, callback: Callback | None) -> None:
    logger.warning("%s", report.format())
    if callback is not None:
        try:
            callback(report)
        except Exception:
            logger.exception("tidal watchdog: the report callback failed")


def install_from_environment(value: str | None) -> bool:
    """Apply ``TIDAL_WATCHDOG``: a threshold in seconds, or on/yes/true for 0.1; True if on."""
    if not value:
        return False
    text = value.strip().lower()
    if text in ("0", "off", "no", "false", ""):
        return False
    if text in ("on", "yes", "true"):
        threshold = DEFAULT_THRESHOLD
    else:
        try:
            threshold = float(text)
        except ValueError:
            logger.warning("TIDAL_WATCHDOG=%r: not a number of seconds; watchdog off", value)
            return False
    watch_blocking(threshold)
    return True

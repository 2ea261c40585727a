"""tidal's loop for tests: a switchable virtual clock and seeded ready-order shuffling.

The clock needs two things from the loop: ``time()`` (overridden here) and
the decision of how long to wait in the poller. ``_run_once`` computes that
wait from the timer heap in loop time and hands it to ``self._poller.poll``;
this loop's poller is a thin wrapper around the real one that turns "wait
until the next timer" into "jump to the next timer" when nothing real is in
flight. The core loop is untouched, so tidal's normal loop pays nothing.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import Any

from tidal._core.tasks import Task
from tidal._loop import EventLoop as _TidalLoop
from tidal.testing._clock import VirtualClock
from tidal.testing._pending import fds_hold_time

__all__ = ("EventLoop", "new_event_loop")

_monotonic = time.monotonic


class _When(float):
    """A deadline that breaks ties by scheduling order.

    The core heap holds ``(when, timer)`` pairs and leaves the order among
    equal deadlines arbitrary, which real time makes rare. Virtual time makes
    ties common (everything scheduled in one turn "now + 1" is due together),
    and they must fire in the order they were scheduled, as they would in
    real time. Arithmetic and comparisons with plain floats are a float's.
    """

    __slots__ = ("_seq",)
    _seq: int

    def __new__(cls, when: float, seq: int) -> _When:
        self = float.__new__(cls, when)
        self._seq = seq
        return self

    def __eq__(self, other: object) -> bool:
        if type(other) is _When:
            return float(self) == float(other) and self._seq == other._seq
        return float.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __lt__(self, other: float) -> bool:
        if type(other) is _When:
            return (float(self), self._seq) < (float(other), other._seq)
        return float.__lt__(self, other)

    def __gt__(self, other: float) -> bool:
        if type(other) is _When:
            return (float(self), self._seq) > (float(other), other._seq)
        return float.__gt__(self, other)

    __hash__ = float.__hash__


class _ClockPoller:
    """The loop's poller, seen through the virtual clock."""

    def __init__(self, loop: EventLoop, real: Any) -> None:
        self._loop = loop
        self._real = real
        self.IN: int = real.IN
        self.OUT: int = real.OUT
        self.readable: int = real.readable
        self.writable: int = real.writable
        self.register = real.register
        self.modify = real.modify
        self.unregister = real.unregister
        self.close = real.close
        self.fileno = real.fileno

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Poll; with a virtual clock, a wait for the next timer may become a jump."""
        loop = self._loop
        clock = loop._clock
        if clock is None or (timeout is not None and timeout <= 0):
            ready: list[tuple[int, int]] = self._real.poll(timeout)
            return ready
        if not clock.autojump:
            # Time stands still: wait for I/O, a thread, or advance() from a thread.
            waited: list[tuple[int, int]] = self._real.poll(None)
            return waited
        deadline = loop._scheduled[0][0] if loop._scheduled else None
        if not loop._holds_time(clock):
            events: list[tuple[int, int]] = self._real.poll(0)
            if not events and deadline is not None:
                if deadline > clock._now:
                    clock._now = deadline
                clock.jumps += 1
            elif not events:
                # Nothing can ever happen but a call from a thread the loop
                # does not know about: wait for it.
                events = self._real.poll(None)
            return events
        # Real work is in flight: time follows real time until it answers.
        grace = clock.io_grace
        wait = timeout
        if grace is not None:
            wait = grace if wait is None else min(wait, grace)
        start = _monotonic()
        events = self._real.poll(wait)
        elapsed = _monotonic() - start
        now = clock._now + elapsed
        if deadline is not None and (now > deadline or (not events and wait == timeout)):
            now = deadline  # waited the whole way: the timer is due exactly now
        elif deadline is not None and not events:
            now = deadline  # the grace ran out: jump
            clock.jumps += 1
        if now > clock._now:
            clock._now = now
        return events


class EventLoop(_TidalLoop):
    """tidal's event loop with test controls: a :class:`VirtualClock` and shuffling.

    Without a clock it runs on real time like ``tidal.new_event_loop()``'s
    loop. ``set_clock()`` attaches or detaches a virtual clock at any time
    (time stays monotonic across the switch); ``set_shuffle(seed)`` permutes,
    at each turn, the order of the tasks that became ready in the previous
    turn (callbacks keep their FIFO order).
    """

    __test__ = False  # not a pytest test class, whatever module imports it

    def __init__(self, *, clock: VirtualClock | None = None, shuffle: int | None = None) -> None:
        super().__init__()
        self._clock: VirtualClock | None = None
        #: Real-time mode: time() is monotonic() + _offset (non-zero after a
        #: clock was detached, so time never goes back).
        self._offset = 0.0
        self._started = False
        self._executor_pending = 0
        self._fd_cache: dict[int, Any] = {}
        self._timer_seq = itertools.count()
        self._rng: random.Random | None = None
        self._shuffle_seed: int | None = None
        #: What the pytest plugin applied to this loop (see apply_settings()).
        self._settings: Any = None
        self._settings_clock: VirtualClock | None = None
        self._real_poller = self._poller
        poller: Any = _ClockPoller(self, self._real_poller)
        self._poller = poller
        if clock is not None:
            self.set_clock(clock)
        if shuffle is not None:
            self.set_shuffle(shuffle)

    # -- time ---------------------------------------------------------------

    def time(self) -> float:
        """Virtual time with a clock attached, else ``time.monotonic()`` (plus an offset)."""
        clock = self._clock
        if clock is None:
            return _monotonic() + self._offset
        return clock._now

    @property
    def clock(self) -> VirtualClock | None:
        """The attached :class:`VirtualClock`, or None on real time."""
        return self._clock

    def set_clock(self, clock: VirtualClock | None) -> None:
        """Attach *clock* (or detach with None).

        A loop that has never run and has no timer takes the clock's own time
        (``clock.start``, 0.0 by default). Otherwise the clock is set to the
        loop's current time, so timers already scheduled keep their meaning.
        """
        old = self._clock
        if clock is old:
            return
        if clock is not None and clock._loop is not None and clock._loop is not self:
            raise RuntimeError("this VirtualClock already drives another loop")
        now = self.time()
        if old is not None:
            old._loop = None
            self._clock = None
            self._offset = now - _monotonic()
        if clock is not None:
            if self._started or self._scheduled:
                clock._now = now
            else:
                clock._now = clock.start
            clock._loop = self
            self._clock = clock

    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> Any:
        """As tidal's loop; timers with equal deadlines fire in scheduling order."""
        if when is not None:
            when = _When(when, next(self._timer_seq))
        timer = super().call_at(when, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def _holds_time(self, clock: VirtualClock) -> bool:
        # Is anything real in flight that the clock must not jump past?
        if clock._holds or self._executor_pending or getattr(self, "_threadsafe", None):
            return True
        return bool(self._fds) and fds_hold_time(self, self._fd_cache)

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Any, *args: Any
    ) -> Any:
        """As tidal's loop; the clock does not jump while the call is pending."""
        fut = super().run_in_executor(executor, func, *args)
        self._executor_pending += 1
        fut.add_done_callback(self._executor_done)
        return fut

    def _executor_done(self, fut: Any) -> None:
        self._executor_pending -= 1

    async def shutdown_default_executor(self, *args: Any) -> None:
        """As tidal's loop; the clock does not jump while the pool's threads are joined."""
        # *args: the timeout, which 3.11's signature does not have.
        clock = self._clock
        if clock is None:
            await super().shutdown_default_executor(*args)
            return
        with clock.hold():  # the join runs in a thread the loop does not track
            await super().shutdown_default_executor(*args)

    # -- shuffling ------------------------------------------------------------

    @property
    def shuffle_seed(self) -> int | None:
        """The seed of the ready-order shuffle, or None when the order is FIFO."""
        return self._shuffle_seed

    def set_shuffle(self, seed: int | None) -> None:
        """Shuffle, seeded with *seed*, the tasks that become ready together (None: FIFO)."""
        self._shuffle_seed = seed
        self._rng = None if seed is None else random.Random(seed)

    def _run_once(self) -> None:
        rng = self._rng
        if rng is not None and len(self._ready) > 1:
            _shuffle_tasks(self._ready, rng)
        super()._run_once()

    # -- settings from the pytest plugin --------------------------------------

    def run_forever(self) -> None:
        """As tidal's loop; first applies the running test's settings (pytest plugin)."""
        from tidal.testing import _current

        settings = _current.settings
        if settings is not self._settings:
            self._apply_settings(settings)
        self._started = True
        super().run_forever()

    def _apply_settings(self, settings: Any) -> None:
        # Undo what the previous test's settings set, then apply these.
        old = self._settings
        if old is not None:
            if self._settings_clock is not None and self._clock is self._settings_clock:
                self.set_clock(None)
            if old.shuffle is not None:
                self.set_shuffle(None)
        self._settings = settings
        self._settings_clock = None
        if settings is None:
            return
        clock = settings.clock
        if clock is not None and self._clock is None and clock._loop is None:
            self.set_clock(clock)
            self._settings_clock = clock
        if settings.shuffle is not None and self._rng is None:
            self.set_shuffle(settings.shuffle)
        settings.loops.append(self)


def _shuffle_tasks(ready: Any, rng: random.Random) -> None:
    # Only tasks move: the positions they hold are permuted among them, and
    # every callback keeps its place (FIFO callbacks are a documented promise).
    positions = [i for i, item in enumerate(ready) if isinstance(item, Task)]
    if len(positions) < 2:
        return
    tasks = [ready[i] for i in positions]
    rng.shuffle(tasks)
    for i, task in zip(positions, tasks, strict=True):
        ready[i] = task


def new_event_loop(*, clock: VirtualClock | None = None, shuffle: int | None = None) -> EventLoop:
    """A new :class:`EventLoop`, optionally with a virtual *clock* and a *shuffle* seed."""
    return EventLoop(clock=clock, shuffle=shuffle)

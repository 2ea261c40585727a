"""A virtual-time test loop built on tidal's loop, for ``new_test_loop()``.

CPython's ``test_asyncio.utils.TestLoop`` subclasses asyncio's own
``BaseEventLoop``: time is a number the test advances, and a generator passed
by the test decides how far to advance it each time a timer is scheduled.
The mixin tests of test_futures/test_tasks (and others) create their loop
with ``self.new_test_loop(gen)``; the harness swaps ``utils.TestLoop`` for
this class so those tests run on tidal's loop, with the same clock contract:

* ``time()`` is virtual and starts at 0;
* after each turn of the loop, every ``when`` passed to ``call_at`` during
  that turn is sent to the generator, which answers how far to advance;
* the loop never blocks in the poller (virtual time does not pass while
  waiting); fds are still polled, without waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import tidal


class _NonBlockingPoller:
    """Wraps tidal's poller: every poll returns at once."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def poll(self, timeout: float | None) -> Any:
        return self._real.poll(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class TidalTestLoop(tidal.EventLoop):  # type: ignore[misc]
    """tidal's event loop with the virtual clock of CPython's TestLoop."""

    def __init__(self, gen: Callable[[], Generator[Any, Any, Any]] | None = None) -> None:
        super().__init__()
        if gen is None:

            def gen() -> Generator[Any, Any, Any]:
                yield

            self._check_on_close = False
        else:
            self._check_on_close = True
        self._gen = gen()
        next(self._gen)
        self._time: float = 0
        self._clock_resolution = 1e-9
        self._timers: list[float] = []
        self._poller = _NonBlockingPoller(self._poller)

    def time(self) -> float:
        return self._time

    def advance_time(self, advance: float) -> None:
        """Move the virtual clock forward."""
        if advance:
            self._time += advance

    def close(self) -> None:
        super().close()
        if self._check_on_close:
            try:
                self._gen.send(0)
            except StopIteration:
                pass
            else:  # pragma: no cover - a test bug, as in CPython's TestLoop
                raise AssertionError("Time generator is not finished")

    def _run_once(self) -> None:
        super()._run_once()
        for when in self._timers:
            advance = self._gen.send(when)
            self.advance_time(advance)
        self._timers = []

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,
                context: Any = None) -> Any:
        self._timers.append(when)
        return super().call_at(when, callback, *args, context=context)

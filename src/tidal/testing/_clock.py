"""The virtual clock: what ``loop.time()`` answers on a test loop that has one."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

__all__ = ("VirtualClock",)


class VirtualClock:
    """Virtual time for a :class:`tidal.testing.EventLoop`.

    While the clock is attached, ``loop.time()`` is :meth:`time`, and time
    moves only when the clock moves it:

    * **autojump** (on by default): when no callback or task is ready and
      nothing the loop waits on is still in flight, time jumps straight to
      the next timer, so ``await asyncio.sleep(3600)`` returns at once with
      ``loop.time()`` exactly one hour later;
    * :meth:`advance` moves it by hand (from any thread);
    * while real work the loop cannot see through is pending (a thread-pool
      call, a subprocess, a socket or pipe whose other end is not this loop's
      own, or a :meth:`hold`), the clock does not jump: it follows real time
      until that work answers or the next timer is due. ``io_grace`` (real
      seconds) lets it jump anyway once such work has been silent that long.

    With ``autojump = False`` the clock stands still until :meth:`advance`.
    A clock drives one loop at a time.
    """

    def __init__(
        self, *, autojump: bool = True, io_grace: float | None = None, start: float = 0.0
    ) -> None:
        #: Jump to the next timer whenever the loop would otherwise wait for it.
        self.autojump: bool = autojump
        #: Real seconds of silence from pending I/O after which time jumps
        #: anyway; None (the default) never jumps past pending I/O.
        self.io_grace: float | None = io_grace
        self._now: float = float(start)
        #: Where a new loop's time starts when this clock is attached to it.
        self.start: float = float(start)
        self._holds = 0
        self._loop: Any = None
        #: Number of jumps so far (a test can assert that time really jumped).
        self.jumps: int = 0

    def __repr__(self) -> str:
        return (
            f"<VirtualClock time={self._now!r} autojump={self.autojump} "
            f"io_grace={self.io_grace!r} jumps={self.jumps}>"
        )

    def time(self) -> float:
        """The current virtual time (what the attached loop's ``time()`` returns)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by *seconds*; timers now due run on the loop's next turn."""
        if not seconds >= 0 or math.isinf(seconds):
            raise ValueError(f"cannot advance the clock by {seconds!r} seconds")
        self._now += seconds
        loop = self._loop
        if loop is not None and loop._polling:
            # Called from another thread while the loop waits: make it look again.
            loop._write_to_self()

    @property
    def held(self) -> bool:
        """True while a :meth:`hold` is active."""
        return self._holds > 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Within this block time never jumps (it follows real time instead).

        For work the loop cannot see: a thread started by hand that will call
        ``call_soon_threadsafe``, a server in another process...
        """
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

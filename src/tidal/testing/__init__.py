"""Testing with tidal: a virtual clock that jumps, and seeded ready-order shuffling.

* :class:`VirtualClock`: virtual time; with autojump, ``await sleep(3600)``
  returns at once, at exactly the virtual time it would have in real time;
* :class:`EventLoop` / :func:`new_event_loop`: tidal's loop with a clock
  (optional, switchable) and a ready-order shuffle (optional, seeded);
* :func:`run`: ``asyncio.run()`` on such a loop.

The pytest plugin (``@pytest.mark.tidal``, ``pytest --tidal``, the
``tidal_clock`` fixture) ships with tidal; see ``docs/testing.md``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from tidal._core.events import EventLoopPolicy as _TidalPolicy
from tidal.testing._clock import VirtualClock
from tidal.testing._loop import EventLoop, new_event_loop

__all__ = ("EventLoop", "EventLoopPolicy", "VirtualClock", "new_event_loop", "run")

_T = TypeVar("_T")


class EventLoopPolicy(_TidalPolicy):
    """An asyncio policy whose new loops are :class:`tidal.testing.EventLoop`\\ s."""

    def new_event_loop(self) -> EventLoop:
        """A new test loop (real time until a clock is attached)."""
        return new_event_loop()


def run(
    main: Coroutine[Any, Any, _T],
    *,
    clock: VirtualClock | None = None,
    shuffle: int | None = None,
    debug: bool | None = None,
) -> _T:
    """Run *main* as ``asyncio.run()`` does, on a new test loop.

    ``run(main(), clock=VirtualClock())`` runs it on virtual time.
    """
    from tidal._api.runners import Runner

    def factory() -> EventLoop:
        return new_event_loop(clock=clock, shuffle=shuffle)

    with Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)

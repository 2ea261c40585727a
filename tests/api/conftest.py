"""Fixtures for the high-level API tests: a loop on virtual time where tidal runs.

A module whose tests wait on timers takes ``virtual_loop`` as its ``loop``::

    @pytest.fixture
    def loop(virtual_loop: Any) -> Any:
        return virtual_loop

On tidal that is a ``tidal.testing`` loop with a virtual clock: a 10 ms
timeout fires at exactly 10 ms of loop time, however busy the machine is,
and a one-second sleep takes no real time. On asyncio (the oracle) it is
asyncio's own loop on real time, so the timings those tests use stay short.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import tidal
import tidal.testing
from loop_support import current_loop


@pytest.fixture
def virtual_loop(aio: ModuleType) -> Iterator[Any]:
    """Like ``loop``; on tidal, a test loop on virtual time (autojump on)."""
    if aio is tidal:
        lp = tidal.testing.new_event_loop(clock=tidal.testing.VirtualClock())
    else:
        lp = aio.new_event_loop()
    yield from current_loop(aio, lp)

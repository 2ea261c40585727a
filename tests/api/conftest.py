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

import gc
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import tidal
import tidal.testing


@pytest.fixture
def virtual_loop(aio: ModuleType) -> Iterator[Any]:
    """Like ``loop``; on tidal, a test loop on virtual time (autojump on)."""
    if aio is tidal:
        lp = tidal.testing.new_event_loop(clock=tidal.testing.VirtualClock())
    else:
        lp = aio.new_event_loop()
    aio.set_event_loop(lp)
    yield lp
    if not lp.is_closed():
        if not lp.is_running():
            lp.run_until_complete(lp.shutdown_asyncgens())
        lp.close()
    aio.set_event_loop(None)
    gc.collect()

"""The running test's settings, which a test loop applies when it starts running.

The pytest plugin sets :data:`settings` for the duration of each test (setup
to teardown). Whatever runs the test — tidal's plugin, pytest-asyncio or
anyio — creates and runs the loop; a :class:`tidal.testing.EventLoop` picks
the settings up in ``run_forever()``, so the clock and the shuffle reach the
test's loop without depending on how another plugin builds it.
"""

from __future__ import annotations

from typing import Any

__all__ = ("TestSettings", "settings")


class TestSettings:
    """What one test asks of the loops it runs on."""

    __test__ = False  # not a pytest test class

    def __init__(self, clock: Any = None, shuffle: int | None = None) -> None:
        #: The VirtualClock of the ``tidal_clock`` fixture, or None.
        self.clock: Any = clock
        #: The ready-order shuffle seed for this test, or None.
        self.shuffle: int | None = shuffle
        #: Test loops that applied these settings (the plugin checks them).
        self.loops: list[Any] = []


#: The running test's settings; None outside a test.
settings: TestSettings | None = None

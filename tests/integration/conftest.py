"""Real libraries (aiohttp, httpx, websockets) on tidal, with stock asyncio as the oracle.

Every test body is an ordinary asyncio program.  The ``rt`` fixture runs it
three ways: ``tidal.run(main())``, ``asyncio.run(main(),
loop_factory=tidal.new_event_loop)`` (``asyncio.Runner`` on 3.11), and plain
``asyncio.run(main())``, the oracle: a test that passes only on asyncio shows
a tidal bug.  Inside, ``rt.check()`` proves which loop and Task class are
really running.

Each test must leave no file descriptor open, no exception may reach the
loop's exception handler (aiohttp reports unclosed sessions there, for one),
and a ResourceWarning (an unclosed socket or transport) is an error.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
from integ_support import ENTRY_POINTS, Runtime


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.filterwarnings("error::ResourceWarning"))


@pytest.fixture(params=ENTRY_POINTS)
def rt(request: pytest.FixtureRequest) -> Runtime:
    """The runtime under test: tidal through either entry point, or asyncio (the oracle)."""
    return Runtime(request.param)


def _open_fds() -> dict[str, str]:
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed already
            pass
    return fds


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Fail a test that leaves a file descriptor open once everything is closed.

    A garbage collection (which lets a dropped socket close) runs only when
    the count grew: with the libraries loaded, one costs tens of milliseconds.
    """
    before = _open_fds()
    yield
    after = _open_fds()
    if len(after) > len(before):
        gc.collect()
        after = _open_fds()
    leaked = {fd: target for fd, target in after.items() if before.get(fd) != target}
    assert len(after) <= len(before), f"file descriptors leaked: {leaked}"

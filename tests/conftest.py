"""Shared fixtures: every behaviour test runs on tidal and on stock asyncio.

A test that takes the ``aio`` fixture is run twice: once with ``aio`` being
the ``tidal`` module, once with it being ``asyncio``.  asyncio is the oracle:
a test that passes only on tidal shows a divergence.

``loop`` is a fresh loop from that module, closed after the test.
``virtual_loop`` is the same on asyncio; on tidal, a ``tidal.testing`` loop
on virtual time, for tests that wait on timers (see its docstring).
``dropin`` runs the *asyncio* API on tidal's loop (``asyncio.run(...,
loop_factory=tidal.new_event_loop)``) and on asyncio's own loop.

After every test a garbage collection runs (``collect_test_garbage`` below),
so that what a test leaked in a reference cycle (a future's "exception was
never retrieved", an unclosed transport's ResourceWarning, a finalizer's
error) is reported in that test, not in a later one.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Coroutine, Iterator
from types import ModuleType
from typing import Any

import pytest

import tidal
import tidal.testing
from loop_support import current_loop

IMPLS = {"tidal": tidal, "asyncio": asyncio}


@pytest.fixture(params=["tidal", "asyncio"])
def aio(request: pytest.FixtureRequest) -> ModuleType:
    """The module under test: ``tidal`` or (as the oracle) ``asyncio``."""
    return IMPLS[request.param]


@pytest.fixture
def loop(aio: ModuleType) -> Iterator[Any]:
    """A new event loop of the module under test, set as current, closed afterwards."""
    yield from current_loop(aio, aio.new_event_loop())


@pytest.fixture
def virtual_loop(aio: ModuleType) -> Iterator[Any]:
    """Like ``loop``; on tidal, a test loop on virtual time (autojump on).

    A test (or a module, overriding ``loop`` with it) that waits on timers
    takes it: on tidal a 10 ms timeout fires at exactly 10 ms of loop time
    however busy the machine is, a one-second sleep takes no real time, and
    time jumps only once nothing is ready and no I/O is in flight, so a
    "give the other side time" sleep really lets it finish.  On asyncio (the
    oracle) it is asyncio's own loop on real time, which is why those timings
    stay short.  Real I/O that the loop cannot see the end of (threads,
    subprocesses, socket pairs) holds the clock: time then follows real time.
    """
    if aio is tidal:
        lp = tidal.testing.new_event_loop(clock=tidal.testing.VirtualClock())
    else:
        lp = aio.new_event_loop()
    yield from current_loop(aio, lp)


@pytest.fixture(params=["tidal", "asyncio"])
def dropin(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run an asyncio coroutine on tidal's loop, or on asyncio's (the oracle)."""
    if request.param == "tidal":
        if sys.version_info >= (3, 12):
            return lambda coro: asyncio.run(coro, loop_factory=tidal.new_event_loop)

        def run(coro: Coroutine[Any, Any, Any]) -> Any:
            with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
                return runner.run(coro)

        return run
    return asyncio.run


@pytest.fixture
def is_tidal(aio: ModuleType) -> bool:
    """True when the module under test is tidal."""
    return aio is tidal


# Collections run in fixtures' teardown (these two are set up first, so torn
# down last), which is before pytest's unraisable-exception check and inside
# the teardown's log capture: a leak report that a collection triggers fails
# or shows in the test that leaked (a hook after the teardown would be too
# late: the report would land in the next test).
# Everything alive after one is frozen out of later collections
# (``gc.freeze``): a full collection of the suite's heap costs ~0.1 s, one of
# a test's own objects a fraction of a millisecond.


@pytest.fixture(autouse=True, scope="module")
def collect_module_garbage() -> Iterator[None]:
    """At the end of a module, thaw everything and collect it once.

    What a test left alive (a module-scoped fixture's objects, the test's
    loop, which pytest references until the test's teardown is over) and that
    died later is reported here, in the module's last test, instead of never.
    """
    yield
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def collect_test_garbage() -> Iterator[None]:
    """After each test, collect the garbage it made (its other fixtures gone)."""
    yield
    gc.collect()
    gc.freeze()


def pytest_sessionfinish() -> None:
    """Thaw the heap, so that pytest's own last collection sees all of it."""
    gc.unfreeze()

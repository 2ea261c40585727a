"""Shared fixtures: every behaviour test runs on tidal and on stock asyncio.

A test that takes the ``aio`` fixture is run twice: once with ``aio`` being
the ``tidal`` module, once with it being ``asyncio``.  asyncio is the oracle:
a test that passes only on tidal shows a divergence.

``loop`` is a fresh loop from that module, closed after the test.
``dropin`` runs the *asyncio* API on tidal's loop (``asyncio.run(...,
loop_factory=tidal.new_event_loop)``) and on asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterator
from types import ModuleType
from typing import Any

import pytest

import tidal
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

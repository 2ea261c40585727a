"""Real libraries (aiohttp, httpx, websockets) on tidal, with stock asyncio as the oracle.

Every test body is an ordinary asyncio program.  The ``rt`` fixture runs it
three ways: ``tidal.run(main())``, ``asyncio.run(main(),
loop_factory=tidal.new_event_loop)`` (``asyncio.Runner`` on 3.11), and plain
``asyncio.run(main())``, the oracle: a test that passes only on asyncio shows
a tidal bug.  Inside, ``rt.check()`` proves which loop and Task class are
really running.

Each test must leave no file descriptor open, and no exception may reach the
loop's exception handler (aiohttp reports unclosed sessions there, for one).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import tidal

# A hang fails the test after this many seconds instead of stalling the run.
GUARD = 10.0

ENTRY_POINTS = ("tidal.run", "loop_factory", "asyncio")


class Runtime:
    """One way of running an asyncio program: on tidal, or on asyncio itself."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tidal = kind != "asyncio"

    def __repr__(self) -> str:
        return f"<Runtime {self.kind}>"

    def check_loop(self) -> None:
        """Assert that the running loop is tidal's (or asyncio's, for the oracle)."""
        loop = asyncio.get_running_loop()
        module = type(loop).__module__
        if self.tidal:
            assert module.startswith("tidal"), f"not a tidal loop: {type(loop)!r}"
        else:
            assert module.startswith("asyncio"), f"not an asyncio loop: {type(loop)!r}"

    def check(self) -> None:
        """Assert the loop, and that the current task is a tidal.Task (asyncio's for the oracle).

        Libraries may build their own tasks with ``asyncio.Task(coro, loop=...)``
        (aiohttp does), so inside their callbacks use :meth:`check_loop`.
        """
        self.check_loop()
        task = asyncio.current_task()
        assert task is not None
        if self.tidal:
            assert isinstance(task, tidal.Task), f"not a tidal Task: {type(task)!r}"
        else:
            assert not isinstance(task, tidal.Task)
            assert isinstance(task, asyncio.Task)

    def run(self, main: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``main(*args)`` to completion in a fresh loop of this runtime."""
        errors: list[dict[str, Any]] = []

        async def guarded() -> Any:
            self.check()
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
            async with asyncio.timeout(GUARD):
                return await main(*args)

        if self.kind == "tidal.run":
            result = tidal.run(guarded())
        elif self.kind == "loop_factory":
            if sys.version_info >= (3, 12):
                result = asyncio.run(guarded(), loop_factory=tidal.new_event_loop)
            else:
                with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
                    result = runner.run(guarded())
        else:
            result = asyncio.run(guarded())
        assert not errors, f"exception handler called: {errors!r}"
        return result


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

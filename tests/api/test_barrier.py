"""Barrier, on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import re
import sys
from types import ModuleType
from typing import Any

import pytest
from sync_support import bracket


def test_parties_must_be_positive(aio: ModuleType) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"^parties must be > 0$"):
            aio.Barrier(bad)
    b = aio.Barrier(3)
    assert (b.parties, b.n_waiting, b.broken) == (3, 0, False)
    assert bracket(b) == "filling, waiters:0/3"


def test_trips_and_is_reusable(aio: ModuleType, loop: Any) -> None:
    barrier = aio.Barrier(3)
    trace: list[Any] = []

    async def party(name: str) -> None:
        for rnd in range(2):
            index = await barrier.wait()
            trace.append((rnd, name, index))

    async def main() -> None:
        tasks = [loop.create_task(party(n)) for n in "ab"]
        await aio.sleep(0)
        trace.append(bracket(barrier))
        trace.append(barrier.n_waiting)
        tasks.append(loop.create_task(party("c")))
        await aio.sleep(0)
        trace.append(bracket(barrier))
        for t in tasks:
            await t
        trace.append(bracket(barrier))

    loop.run_until_complete(main())
    assert trace == [
        "filling, waiters:2/3", 2, (0, "c", 2), "draining, waiters:0/3",
        (0, "a", 0), (0, "b", 1),
        (1, "a", 2), (1, "b", 0), (1, "c", 1),
        "filling, waiters:0/3",
    ]


def test_async_with_gives_the_index(aio: ModuleType, loop: Any) -> None:
    barrier = aio.Barrier(2)

    async def party() -> int:
        async with barrier as index:
            return int(index)

    async def main() -> list[int]:
        t1, t2 = loop.create_task(party()), loop.create_task(party())
        return [await t1, await t2]

    assert loop.run_until_complete(main()) == [0, 1]


def test_single_party_never_blocks(aio: ModuleType, loop: Any) -> None:
    barrier = aio.Barrier(1)

    async def main() -> list[int]:
        return [await barrier.wait() for _ in range(3)]

    assert loop.run_until_complete(main()) == [0, 0, 0]


def test_abort(aio: ModuleType, loop: Any) -> None:
    barrier = aio.Barrier(3)
    trace: list[Any] = []

    async def party(name: str) -> None:
        try:
            await barrier.wait()
        except asyncio.BrokenBarrierError as e:
            trace.append((name, str(e)))

    async def main() -> None:
        tasks = [loop.create_task(party(n)) for n in "ab"]
        await aio.sleep(0)
        await barrier.abort()
        trace.append(bracket(barrier))
        trace.append((barrier.broken, barrier.n_waiting))
        for t in tasks:
            await t
        await party("late")

    loop.run_until_complete(main())
    assert trace == [
        "broken", (True, 0),
        ("a", "Abort or reset of barrier"), ("b", "Abort or reset of barrier"),
        ("late", "Barrier aborted"),
    ]


def test_reset_breaks_waiters_then_refills(aio: ModuleType, loop: Any) -> None:
    barrier = aio.Barrier(2)
    trace: list[Any] = []

    async def party(name: str) -> None:
        try:
            trace.append((name, await barrier.wait()))
        except asyncio.BrokenBarrierError as e:
            trace.append((name, str(e)))

    async def main() -> None:
        a = loop.create_task(party("a"))
        await aio.sleep(0)
        await barrier.reset()
        trace.append(bracket(barrier))
        late = loop.create_task(party("late"))  # blocks until the reset is over
        await a
        trace.append(bracket(barrier))
        c = loop.create_task(party("c"))
        await late
        await c
        await barrier.reset()  # nobody waiting: straight back to filling
        trace.append(bracket(barrier))

    loop.run_until_complete(main())
    assert trace == [
        "resetting, waiters:0/2",
        ("a", "Abort or reset of barrier"),
        "filling, waiters:1/2",
        ("c", 1), ("late", 0),
        "filling, waiters:0/2",
    ]


def test_cancelled_party_leaves(aio: ModuleType, loop: Any) -> None:
    barrier = aio.Barrier(2)

    async def main() -> list[Any]:
        t = loop.create_task(barrier.wait())
        await aio.sleep(0)
        before = barrier.n_waiting
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
        return [before, barrier.n_waiting, t.cancelled(), bracket(barrier)]

    assert loop.run_until_complete(main()) == [1, 0, True, "filling, waiters:0/2"]


def test_bound_to_a_different_loop(aio: ModuleType, loop: Any) -> None:
    # Barrier blocks through its Condition, whose loop binding applies.
    barrier = aio.Barrier(2)

    async def wait_briefly() -> None:
        t = loop.create_task(barrier.wait())
        await aio.sleep(0)
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)

    loop.run_until_complete(wait_briefly())
    other = aio.new_event_loop()
    try:
        # The Condition's repr: its class is the implementation's; 3.13 waits
        # with the condition locked.
        state = "locked" if sys.version_info >= (3, 13) else "unlocked"
        message = (rf"^<{re.escape(aio.Condition.__module__)}\.Condition object at 0x[0-9a-f]+ "
                   rf"\[{state}\]> is bound to a different event loop$")
        with pytest.raises(RuntimeError, match=message):
            other.run_until_complete(barrier.wait())
    finally:
        other.close()

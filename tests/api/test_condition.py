"""Condition, on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import sys
from types import ModuleType
from typing import Any

import pytest
from sync_support import bracket


def test_needs_the_lock(aio: ModuleType, loop: Any) -> None:
    cond = aio.Condition()
    with pytest.raises(RuntimeError, match=r"^cannot notify on un-acquired lock$"):
        cond.notify()
    with pytest.raises(RuntimeError, match=r"^cannot notify on un-acquired lock$"):
        cond.notify_all()
    with pytest.raises(RuntimeError, match=r"^cannot wait on un-acquired lock$"):
        loop.run_until_complete(cond.wait())


def test_exports_the_lock_methods(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()
    cond = aio.Condition(lock)
    assert cond.locked() is False

    async def main() -> None:
        assert await cond.acquire() is True
        assert lock.locked() and cond.locked()
        cond.release()
        assert not lock.locked()
        async with cond:
            assert lock.locked()
        assert not lock.locked()

    loop.run_until_complete(main())


def test_notify_order_and_repr(aio: ModuleType, loop: Any) -> None:
    cond = aio.Condition()
    trace: list[Any] = []

    async def waiter(i: int) -> None:
        async with cond:
            result = await cond.wait()
            trace.append((i, result, cond.locked()))

    async def main() -> None:
        tasks = [loop.create_task(waiter(i)) for i in range(5)]
        await aio.sleep(0)
        trace.append(bracket(cond))
        async with cond:
            cond.notify()
            trace.append(bracket(cond))
        await aio.sleep(0)
        await aio.sleep(0)
        async with cond:
            cond.notify(2)
        await aio.sleep(0)
        await aio.sleep(0)
        await aio.sleep(0)
        async with cond:
            cond.notify_all()
            cond.notify(10)  # the woken ones are not notified twice
        for t in tasks:
            await t
        trace.append(bracket(cond))

    loop.run_until_complete(main())
    assert trace == [
        "unlocked, waiters:5", "locked, waiters:5",
        (0, True, True), (1, True, True), (2, True, True), (3, True, True), (4, True, True),
        "unlocked",
    ]


def test_wait_for(aio: ModuleType, loop: Any) -> None:
    cond = aio.Condition()
    state = {"n": 0}
    calls: list[int] = []

    def predicate() -> Any:
        calls.append(state["n"])
        return state["n"] >= 2 and f"n={state['n']}"

    async def waiter() -> Any:
        async with cond:
            return await cond.wait_for(predicate)

    async def main() -> Any:
        t = loop.create_task(waiter())
        await aio.sleep(0)
        for _ in range(3):
            async with cond:
                state["n"] += 1
                cond.notify()
            await aio.sleep(0)
        return await t

    assert loop.run_until_complete(main()) == "n=2"
    assert calls == [0, 1, 2]


def test_cancelled_wait_reacquires_the_lock(aio: ModuleType, loop: Any) -> None:
    cond = aio.Condition()

    async def waiter() -> None:
        async with cond:
            try:
                await cond.wait()
            except asyncio.CancelledError as e:
                assert cond.locked()
                assert e.args == ("stop",)
                raise

    async def main() -> list[Any]:
        t = loop.create_task(waiter())
        await aio.sleep(0)
        t.cancel("stop")
        try:
            await t
        except asyncio.CancelledError:
            pass
        return [t.cancelled(), cond.locked(), bracket(cond)]

    assert loop.run_until_complete(main()) == [True, False, "unlocked"]


def test_cancelled_while_reacquiring(aio: ModuleType, loop: Any) -> None:
    # Notified, then cancelled while waiting for the lock: wait() keeps
    # trying until it holds the lock, then raises CancelledError.
    cond = aio.Condition()
    trace: list[Any] = []

    async def waiter() -> None:
        async with cond:
            try:
                await cond.wait()
            except asyncio.CancelledError as e:
                trace.append(("cancelled", e.args, cond.locked()))
                raise

    async def main() -> None:
        t = loop.create_task(waiter())
        await aio.sleep(0)
        async with cond:
            cond.notify()
            await aio.sleep(0)  # the waiter wakes, blocks on the lock
            await aio.sleep(0)
            t.cancel("first")
            await aio.sleep(0)
            await aio.sleep(0)
            trace.append("releasing")
        try:
            await t
        except asyncio.CancelledError:
            trace.append("done")

    loop.run_until_complete(main())
    args = ("first",) if sys.version_info >= (3, 13) else ()
    assert trace == ["releasing", ("cancelled", args, True), "done"]


def test_notified_then_cancelled_waiter(aio: ModuleType, loop: Any) -> None:
    # 3.13 hands the notification on to the next waiter; 3.11/3.12 do not.
    cond = aio.Condition()
    trace: list[str] = []

    async def waiter(name: str) -> None:
        async with cond:
            try:
                await cond.wait()
            except asyncio.CancelledError:
                trace.append(f"{name} cancelled")
                raise
            trace.append(f"{name} woken")

    async def main() -> None:
        a = loop.create_task(waiter("a"))
        b = loop.create_task(waiter("b"))
        await aio.sleep(0)
        async with cond:
            cond.notify()
            a.cancel()
        for _ in range(4):
            await aio.sleep(0)
        trace.append(f"b done={b.done()}")
        b.cancel()
        await asyncio.gather(a, b, return_exceptions=True)

    loop.run_until_complete(main())
    if sys.version_info >= (3, 13):
        assert trace == ["a cancelled", "b woken", "b done=True"]
    else:
        assert trace == ["a cancelled", "b done=False", "b cancelled"]


def test_bound_to_a_different_loop(aio: ModuleType, loop: Any) -> None:
    cond = aio.Condition()

    async def waiter() -> None:
        async with cond:
            await cond.wait()

    async def wait_briefly() -> None:
        t = loop.create_task(waiter())
        await aio.sleep(0)
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)

    async def elsewhere() -> tuple[str, str, bool]:
        async with cond:
            try:
                await cond.wait()
            except RuntimeError as e:
                return str(e), repr(cond), cond.locked()
        return "no error", "", False

    loop.run_until_complete(wait_briefly())
    other = aio.new_event_loop()
    try:
        message, cond_repr, locked = other.run_until_complete(elsewhere())
    finally:
        other.close()
    if sys.version_info < (3, 13):  # the check comes after the release
        cond_repr = cond_repr.replace("[locked]", "[unlocked]")
    assert message == f"{cond_repr} is bound to a different event loop"
    assert locked

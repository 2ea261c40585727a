"""Semaphore and BoundedSemaphore, on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import sys
from types import ModuleType
from typing import Any

import pytest
from sync_support import bracket


def test_initial_value_checks(aio: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^Semaphore initial value must be >= 0$"):
        aio.Semaphore(-1)
    with pytest.raises(ValueError, match=r"^Semaphore initial value must be >= 0$"):
        aio.BoundedSemaphore(-1)
    with pytest.raises(
        TypeError,
        match=r"^'<' not supported between instances of 'str' and 'int'$",
    ):
        aio.Semaphore("1")
    assert aio.Semaphore(0).locked()


def test_bounded_release_too_many(aio: ModuleType, loop: Any) -> None:
    sem = aio.BoundedSemaphore(2)
    with pytest.raises(ValueError, match=r"^BoundedSemaphore released too many times$"):
        sem.release()

    async def main() -> None:
        await sem.acquire()
        sem.release()
        with pytest.raises(ValueError, match=r"^BoundedSemaphore released too many times$"):
            sem.release()

    loop.run_until_complete(main())
    plain = aio.Semaphore(1)
    plain.release()
    assert bracket(plain) == "unlocked, value:2"


def test_repr_and_locked(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(1)
    assert bracket(sem) == "unlocked, value:1"

    async def main() -> list[Any]:
        seen: list[Any] = []
        await sem.acquire()
        seen += [bracket(sem), sem.locked()]
        t1 = loop.create_task(sem.acquire())
        t2 = loop.create_task(sem.acquire())
        await aio.sleep(0)
        seen.append(bracket(sem))
        sem.release()
        seen += [bracket(sem), sem.locked()]
        await t1
        seen.append(bracket(sem))
        t2.cancel()
        await aio.sleep(0)
        seen.append(bracket(sem))
        sem.release()
        seen += [bracket(sem), sem.locked()]
        return seen

    assert loop.run_until_complete(main()) == [
        "locked", True,
        "locked, waiters:2",
        "locked, waiters:2", True,
        "locked, waiters:1",
        "locked",
        "unlocked, value:1", False,
    ]


def test_fifo_and_async_with(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(2)
    trace: list[str] = []

    async def worker(name: str) -> None:
        async with sem:
            trace.append(f"{name}+")
            await aio.sleep(0)
            trace.append(f"{name}-")

    async def main() -> None:
        tasks = [loop.create_task(worker(n)) for n in "abcde"]
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert trace == ["a+", "b+", "a-", "b-", "c+", "d+", "c-", "d-", "e+", "e-"]
    assert bracket(sem) == "unlocked, value:2"


def test_new_acquirer_waits_behind_woken_waiters(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(0)
    trace: list[str] = []

    async def taker(name: str) -> None:
        await sem.acquire()
        trace.append(name)

    async def main() -> None:
        a = loop.create_task(taker("a"))
        await aio.sleep(0)
        sem.release()
        sem.release()
        late = loop.create_task(taker("late"))
        await a
        await late
        trace.append(bracket(sem))

    loop.run_until_complete(main())
    assert trace == ["a", "late", "locked"]


def test_woken_then_cancelled_hands_slot_on(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(0)
    trace: list[str] = []

    async def taker(name: str) -> None:
        try:
            await sem.acquire()
        except asyncio.CancelledError:
            trace.append(f"{name} cancelled")
            raise
        trace.append(f"{name} acquired")

    async def main() -> None:
        tasks = [loop.create_task(taker(n)) for n in "abc"]
        await aio.sleep(0)
        sem.release()  # wakes a
        tasks[0].cancel()  # before a runs
        for t in tasks[1:]:
            if t is tasks[2]:
                sem.release()
            await t
        trace.append(f"a.cancelled={tasks[0].cancelled()}")
        trace.append(bracket(sem))

    loop.run_until_complete(main())
    assert trace == ["a cancelled", "b acquired", "c acquired", "a.cancelled=True", "locked"]


def test_cancel_waiting_acquire(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(1)

    async def main() -> list[Any]:
        await sem.acquire()
        t = loop.create_task(sem.acquire())
        await aio.sleep(0)
        t.cancel()
        await aio.sleep(0)
        out = [t.cancelled(), bracket(sem)]
        sem.release()
        out.append(bracket(sem))
        return out

    assert loop.run_until_complete(main()) == [True, "locked", "unlocked, value:1"]


def test_acquire_does_not_hang(aio: ModuleType, loop: Any) -> None:
    # The scenario of CPython issue 90155: the holder cancels a task that
    # was just woken; a later acquire must still succeed.
    sem = aio.Semaphore(1)

    async def c1(tasks: list[Any]) -> None:
        async with sem:
            await aio.sleep(0)
        tasks[1].cancel()

    async def c2(tasks: list[Any]) -> None:
        async with sem:
            await aio.sleep(0)

    async def main() -> str:
        tasks: list[Any] = []
        tasks.append(loop.create_task(c1(tasks)))
        tasks.append(loop.create_task(c2(tasks)))
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        await sem.acquire()
        return bracket(sem)

    assert loop.run_until_complete(main()) == "locked"


def test_release_wakes_many_in_order(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(0)
    trace: list[str] = []

    async def taker(i: int) -> None:
        await sem.acquire()
        trace.append(f"t{i}")

    async def main() -> None:
        tasks = [loop.create_task(taker(i)) for i in range(4)]
        await aio.sleep(0)
        for _ in range(3):
            sem.release()
        trace.append(bracket(sem))
        await aio.sleep(0)
        trace.append(bracket(sem))
        sem.release()
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert trace == ["locked, waiters:4", "t0", "t1", "t2", "locked, waiters:1", "t3"]


def test_subclass_overrides_are_used(aio: ModuleType, loop: Any) -> None:
    calls: list[str] = []

    class Tracing(aio.Semaphore):  # type: ignore[name-defined,misc]
        def locked(self) -> bool:
            calls.append("locked")
            return bool(super().locked())

    sem = Tracing(1)

    async def main() -> None:
        async with sem:
            pass

    loop.run_until_complete(main())
    assert calls == ["locked"]


def test_bound_to_a_different_loop(aio: ModuleType, loop: Any) -> None:
    sem = aio.Semaphore(0)

    async def wait_briefly() -> None:
        t = loop.create_task(sem.acquire())
        await aio.sleep(0)
        t.cancel()
        await aio.sleep(0)

    loop.run_until_complete(wait_briefly())
    other = aio.new_event_loop()
    try:
        with pytest.raises(RuntimeError) as info:
            other.run_until_complete(sem.acquire())
    finally:
        other.close()
    assert str(info.value) == f"{sem!r} is bound to a different event loop"


def test_woken_waiter_wakes_those_queued_behind_it(aio: ModuleType, loop: Any) -> None:
    # Slots freed while a woken waiter had not run yet: 3.13 wakes every
    # task queued behind it at once, 3.11/3.12 one per woken task.
    sem = aio.Semaphore(0)
    gate = aio.Event()
    trace: list[str] = []

    async def taker(name: str, first: Any = None) -> None:
        if first is not None:
            await first.wait()
        await sem.acquire()
        trace.append(name)

    async def ticker() -> None:
        for i in range(4):
            trace.append(f"tick{i}")
            await aio.sleep(0)

    async def main() -> None:
        tasks = [loop.create_task(taker("a")), loop.create_task(taker("n1", gate)),
                 loop.create_task(taker("n2", gate))]
        await aio.sleep(0)
        gate.set()  # n1 and n2 run before a, and queue up behind it
        for _ in range(3):
            sem.release()
        tasks.append(loop.create_task(ticker()))
        for t in tasks:
            await t

    loop.run_until_complete(main())
    if sys.version_info >= (3, 13):
        assert trace == ["a", "tick0", "n1", "n2", "tick1", "tick2", "tick3"]
    else:
        assert trace == ["a", "tick0", "n1", "tick1", "n2", "tick2", "tick3"]


def test_async_with_exit_checks_like_release(aio: ModuleType, loop: Any) -> None:
    bounded, lock = aio.BoundedSemaphore(1), aio.Lock()

    async def over_release() -> None:
        async with bounded:
            bounded.release()

    async def double_release() -> None:
        async with lock:
            lock.release()

    with pytest.raises(ValueError, match=r"^BoundedSemaphore released too many times$"):
        loop.run_until_complete(over_release())
    with pytest.raises(RuntimeError, match=r"^Lock is not acquired\.$"):
        loop.run_until_complete(double_release())
    assert bracket(bounded) == "unlocked, value:1"

"""Lock and Event, on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import re
import weakref
from types import ModuleType
from typing import Any

import pytest
from sync_support import bracket


@pytest.mark.parametrize("name", ["Lock", "Event", "Condition", "Semaphore",
                                  "BoundedSemaphore", "Barrier", "Queue"])
def test_no_loop_parameter(aio: ModuleType, name: str) -> None:
    cls = getattr(aio, name)
    args = (1,) if name == "Barrier" else ()
    with pytest.raises(TypeError) as info:
        cls(*args, loop=None)
    assert str(info.value) == f"{name}.__init__() got an unexpected keyword argument 'loop'"


def test_primitives_are_weakly_referenceable(aio: ModuleType) -> None:
    for obj in (aio.Lock(), aio.Event(), aio.Condition(), aio.Semaphore(), aio.Barrier(1),
                aio.Queue()):
        assert weakref.ref(obj)() is obj


def test_public_exception_classes_are_asyncios(aio: ModuleType) -> None:
    assert aio.BrokenBarrierError is asyncio.BrokenBarrierError
    assert aio.QueueEmpty is asyncio.QueueEmpty
    assert aio.QueueFull is asyncio.QueueFull


# -- Lock -------------------------------------------------------------------


def test_lock_repr(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()
    assert bracket(lock) == "unlocked"

    async def main() -> list[str]:
        seen = []
        await lock.acquire()
        seen.append(bracket(lock))
        t = loop.create_task(lock.acquire())
        await aio.sleep(0)
        seen.append(bracket(lock))
        lock.release()
        seen.append(bracket(lock))
        await t
        seen.append(bracket(lock))
        return seen

    assert loop.run_until_complete(main()) == [
        "locked", "locked, waiters:1", "unlocked, waiters:1", "locked",
    ]


def test_lock_release_unlocked(aio: ModuleType) -> None:
    lock = aio.Lock()
    with pytest.raises(RuntimeError, match=r"^Lock is not acquired\.$"):
        lock.release()


def test_lock_fifo_and_async_with(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()
    order: list[str] = []

    async def worker(name: str) -> None:
        async with lock:
            order.append(f"{name}+")
            await aio.sleep(0)
            order.append(f"{name}-")

    async def main() -> None:
        tasks = [loop.create_task(worker(n)) for n in "abc"]
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert order == ["a+", "a-", "b+", "b-", "c+", "c-"]
    assert not lock.locked()


def test_lock_async_with_releases_on_error(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()

    async def main() -> None:
        async with lock:
            assert lock.locked()
            raise KeyError("x")

    with pytest.raises(KeyError):
        loop.run_until_complete(main())
    assert not lock.locked()


def test_lock_acquire_returns_true(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()

    async def main() -> list[Any]:
        first = await lock.acquire()
        t = loop.create_task(lock.acquire())
        await aio.sleep(0)
        lock.release()
        return [first, await t]

    assert loop.run_until_complete(main()) == [True, True]


def test_lock_is_fair_to_waiters(aio: ModuleType, loop: Any) -> None:
    # A released lock goes to the woken waiter, not to a task that comes
    # along before the waiter runs.
    lock = aio.Lock()
    order: list[str] = []

    async def taker(name: str) -> None:
        await lock.acquire()
        order.append(name)
        lock.release()

    async def main() -> None:
        await lock.acquire()
        waiter = loop.create_task(taker("waiter"))
        await aio.sleep(0)
        lock.release()
        late = loop.create_task(taker("late"))
        await waiter
        await late

    loop.run_until_complete(main())
    assert order == ["waiter", "late"]


def test_lock_cancelled_waiter_is_skipped(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()
    order: list[str] = []

    async def taker(name: str) -> None:
        async with lock:
            order.append(name)

    async def main() -> None:
        await lock.acquire()
        a = loop.create_task(taker("a"))
        b = loop.create_task(taker("b"))
        await aio.sleep(0)
        a.cancel()
        await aio.sleep(0)
        assert bracket(lock) == "locked, waiters:1"
        lock.release()
        await b
        assert a.cancelled()

    loop.run_until_complete(main())
    assert order == ["b"]


def test_lock_woken_then_cancelled_passes_the_lock_on(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()
    order: list[str] = []

    async def taker(name: str) -> None:
        async with lock:
            order.append(name)

    async def main() -> None:
        await lock.acquire()
        a = loop.create_task(taker("a"))
        b = loop.create_task(taker("b"))
        c = loop.create_task(taker("c"))
        await aio.sleep(0)
        lock.release()  # wakes a
        a.cancel()  # ... which is cancelled before it runs
        await b
        await c
        assert a.cancelled()

    loop.run_until_complete(main())
    assert order == ["b", "c"]
    assert not lock.locked()


def test_lock_all_waiters_cancelled_lets_newcomer_jump(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()

    async def main() -> list[Any]:
        await lock.acquire()
        a = loop.create_task(lock.acquire())
        await aio.sleep(0)
        a.cancel()
        lock.release()
        # a's future is cancelled but a has not run yet: the lock is free
        # and every waiter is cancelled, so this does not block.
        got = await lock.acquire()
        state = bracket(lock)
        try:
            await a
        except BaseException as e:
            return [got, state, type(e).__name__]
        return [got, state, "no error"]

    assert loop.run_until_complete(main()) == [True, "locked, waiters:1", "CancelledError"]


def test_lock_cancel_holder_while_waiter_woken(aio: ModuleType, loop: Any) -> None:
    # Cancel the waiter after the lock was taken by someone else: the
    # cancelled waiter must not wake anyone (the lock is held).
    lock = aio.Lock()
    trace: list[str] = []

    async def waiter(name: str) -> None:
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            trace.append(f"{name} cancelled, locked={lock.locked()}")
            raise
        trace.append(f"{name} got it")
        await aio.sleep(0)
        lock.release()

    async def main() -> None:
        await lock.acquire()
        a = loop.create_task(waiter("a"))
        b = loop.create_task(waiter("b"))
        await aio.sleep(0)
        lock.release()
        await aio.sleep(0)  # a takes the lock
        b.cancel()
        await a
        try:
            await b
        except asyncio.CancelledError:
            trace.append("b done")

    loop.run_until_complete(main())
    assert trace == ["a got it", "b cancelled, locked=False", "b done"]


def test_lock_subclass_acquire_is_used_by_async_with(aio: ModuleType, loop: Any) -> None:
    calls: list[str] = []

    class Counting(aio.Lock):  # type: ignore[name-defined,misc]
        async def acquire(self) -> bool:
            calls.append("acquire")
            return await super().acquire()

        def release(self) -> None:
            calls.append("release")
            super().release()

    lock = Counting()

    async def main() -> None:
        async with lock:
            pass

    loop.run_until_complete(main())
    assert calls == ["acquire", "release"]
    lock.extra = 1  # subclasses get a __dict__, as asyncio's do


def test_lock_bound_to_a_different_loop(aio: ModuleType, loop: Any) -> None:
    lock = aio.Lock()

    async def block_once() -> None:
        await lock.acquire()
        t = loop.create_task(lock.acquire())
        await aio.sleep(0)
        lock.release()
        await t
        lock.release()

    loop.run_until_complete(block_once())
    other = aio.new_event_loop()
    try:

        async def elsewhere() -> tuple[str, str]:
            await lock.acquire()  # uncontended: no loop needed
            try:
                await lock.acquire()
            except RuntimeError as e:
                return str(e), repr(lock)
            finally:
                lock.release()
            return "no error", ""

        message, lock_repr = other.run_until_complete(elsewhere())
    finally:
        other.close()
    assert message == f"{lock_repr} is bound to a different event loop"
    assert message.endswith("[locked]> is bound to a different event loop")


def test_uncontended_use_does_not_bind(aio: ModuleType) -> None:
    # Neither waits, so neither binds to the first loop: the second may use them.
    lock, ev = aio.Lock(), aio.Event()
    seen: list[tuple[bool, bool]] = []
    for _ in range(2):
        lp = aio.new_event_loop()
        try:

            async def main() -> tuple[bool, bool]:
                async with lock:
                    held = lock.locked()
                ev.set()
                await ev.wait()
                was_set = ev.is_set()
                ev.clear()
                return held, was_set

            seen.append(lp.run_until_complete(main()))
        finally:
            lp.close()
    assert seen == [(True, True), (True, True)]
    assert not lock.locked() and not ev.is_set()


# -- Event ------------------------------------------------------------------


def test_event_repr_and_state(aio: ModuleType, loop: Any) -> None:
    ev = aio.Event()
    assert bracket(ev) == "unset"
    assert not ev.is_set()

    async def main() -> list[str]:
        seen = []
        t1 = loop.create_task(ev.wait())
        t2 = loop.create_task(ev.wait())
        await aio.sleep(0)
        seen.append(bracket(ev))
        ev.set()
        seen.append(bracket(ev))
        assert await t1 is True
        assert await t2 is True
        seen.append(bracket(ev))
        ev.clear()
        seen.append(bracket(ev))
        return seen

    assert loop.run_until_complete(main()) == [
        "unset, waiters:2", "set, waiters:2", "set", "unset",
    ]


def test_event_wait_returns_at_once_when_set(aio: ModuleType, loop: Any) -> None:
    ev = aio.Event()
    ev.set()
    ev.set()
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        loop.create_task(other())
        assert await ev.wait() is True
        order.append("main")  # no yield happened
        await aio.sleep(0)

    loop.run_until_complete(main())
    assert order == ["main", "other"]


def test_event_set_then_clear_still_wakes(aio: ModuleType, loop: Any) -> None:
    ev = aio.Event()

    async def main() -> Any:
        t = loop.create_task(ev.wait())
        await aio.sleep(0)
        ev.set()
        ev.clear()
        return await t

    assert loop.run_until_complete(main()) is True


def test_event_cancelled_waiter(aio: ModuleType, loop: Any) -> None:
    ev = aio.Event()

    async def main() -> list[Any]:
        t1 = loop.create_task(ev.wait())
        t2 = loop.create_task(ev.wait())
        await aio.sleep(0)
        t1.cancel()
        await aio.sleep(0)
        state = bracket(ev)
        ev.set()
        return [state, t1.cancelled(), await t2]

    assert loop.run_until_complete(main()) == ["unset, waiters:1", True, True]


def test_event_wakeup_order(aio: ModuleType, loop: Any) -> None:
    ev = aio.Event()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await ev.wait()
        order.append(i)

    async def main() -> None:
        tasks = [loop.create_task(waiter(i)) for i in range(4)]
        await aio.sleep(0)
        ev.set()
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert order == [0, 1, 2, 3]


def test_event_ping_pong_trace(aio: ModuleType, loop: Any) -> None:
    e1, e2 = aio.Event(), aio.Event()
    trace: list[str] = []

    async def a() -> None:
        for i in range(3):
            e1.set()
            trace.append(f"a{i}")
            await e2.wait()
            e2.clear()

    async def b() -> None:
        for i in range(3):
            await e1.wait()
            e1.clear()
            trace.append(f"b{i}")
            e2.set()

    async def main() -> None:
        ta, tb = loop.create_task(a()), loop.create_task(b())
        await ta
        await tb

    loop.run_until_complete(main())
    assert trace == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_event_bound_to_a_different_loop(aio: ModuleType, loop: Any) -> None:
    ev = aio.Event()

    async def wait_briefly() -> None:
        t = loop.create_task(ev.wait())
        await aio.sleep(0)
        t.cancel()

    loop.run_until_complete(wait_briefly())
    other = aio.new_event_loop()
    try:
        with pytest.raises(RuntimeError) as info:
            other.run_until_complete(ev.wait())
    finally:
        other.close()
    assert str(info.value) == f"{ev!r} is bound to a different event loop"


def test_asyncio_primitives_on_tidal_loop(dropin: Any) -> None:
    async def main() -> list[Any]:
        lock, ev, q = asyncio.Lock(), asyncio.Event(), asyncio.Queue(maxsize=1)
        loop = asyncio.get_running_loop()
        out: list[Any] = []

        async def consumer() -> None:
            await ev.wait()
            for _ in range(3):
                out.append(await q.get())
                q.task_done()

        async def locked(i: int) -> None:
            async with lock:
                out.append(f"lock{i}")
                await asyncio.sleep(0)

        c = loop.create_task(consumer())
        await asyncio.gather(*(locked(i) for i in range(3)))
        ev.set()
        for i in range(3):
            await q.put(i)
        await q.join()
        await c
        return out

    assert dropin(main()) == ["lock0", "lock1", "lock2", 0, 1, 2]


def test_bound_loop_running_in_another_thread(aio: ModuleType, loop: Any) -> None:
    # The bound loop is running (in another thread): blocking from this
    # thread's loop is still refused.
    import threading

    ev = aio.Event()
    bound = threading.Event()
    stop = aio.Event()
    owner = aio.new_event_loop()

    async def hold() -> None:
        waiter = owner.create_task(ev.wait())  # binds ev to owner
        await aio.sleep(0)
        bound.set()
        await stop.wait()
        waiter.cancel()

    thread = threading.Thread(target=owner.run_until_complete, args=(hold(),))
    thread.start()
    try:
        assert bound.wait(5)
        message = (rf"^<{re.escape(aio.Event.__module__)}\.Event object at 0x[0-9a-f]+ "
                   r"\[unset, waiters:1\]> is bound to a different event loop$")
        with pytest.raises(RuntimeError, match=message):
            loop.run_until_complete(ev.wait())
    finally:
        owner.call_soon_threadsafe(stop.set)
        thread.join(5)
        owner.close()


def test_overridden_create_future_is_used(aio: ModuleType, loop: Any) -> None:
    made: list[Any] = []

    class Loop(type(loop)):  # type: ignore[misc]
        def create_future(self) -> Any:
            fut = super().create_future()
            made.append(fut)
            return fut

    lp = Loop()
    try:
        ev = aio.Event()

        async def main() -> None:
            t = lp.create_task(ev.wait())
            await aio.sleep(0)
            ev.set()
            await t

        lp.run_until_complete(main())
    finally:
        lp.close()
    assert len(made) == 1

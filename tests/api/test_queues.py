"""Queue, PriorityQueue and LifoQueue, on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import re
import sys
import types
from types import ModuleType
from typing import Any

import pytest


def _fmt(q: Any) -> str:
    """What repr() shows after the address, after checking both shapes."""
    name = type(q).__name__
    m = re.fullmatch(rf"<{name} at 0x[0-9a-f]+ (.*)>", repr(q))
    assert m is not None, repr(q)
    assert str(q) == f"<{name} {m.group(1)}>"
    return m.group(1)


def test_repr_shapes(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()
    assert _fmt(q) == "maxsize=0"
    q.put_nowait(1)
    q.put_nowait(2)
    assert _fmt(q) == "maxsize=0 _queue=[1, 2] tasks=2"
    bounded = aio.Queue(maxsize=1)

    async def main() -> list[str]:
        empty = aio.Queue()
        getters = [loop.create_task(empty.get()) for _ in range(2)]
        bounded.put_nowait("x")
        putter = loop.create_task(bounded.put("y"))
        await aio.sleep(0)
        out = [_fmt(empty), _fmt(bounded)]
        for t in (*getters, putter):
            t.cancel()
        await asyncio.gather(*getters, putter, return_exceptions=True)
        out.append(_fmt(bounded))
        return out

    assert loop.run_until_complete(main()) == [
        "maxsize=0 _getters[2]", "maxsize=1 _queue=['x'] _putters[1] tasks=1",
        "maxsize=1 _queue=['x'] tasks=1",
    ]


def test_sizes_and_properties(aio: ModuleType) -> None:
    q = aio.Queue(2)
    assert (q.maxsize, q.qsize(), q.empty(), q.full()) == (2, 0, True, False)
    q.put_nowait("a")
    q.put_nowait("b")
    assert (q.qsize(), q.empty(), q.full()) == (2, False, True)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait("c")
    assert q.get_nowait() == "a"
    assert q.get_nowait() == "b"
    with pytest.raises(asyncio.QueueEmpty) as info:
        q.get_nowait()
    assert info.value.args == ()
    for size in (0, -1):
        unbounded = aio.Queue(size)
        for i in range(5):
            unbounded.put_nowait(i)
        assert not unbounded.full()
    with pytest.raises(AttributeError):
        q.maxsize = 3


def test_odd_maxsize_values(aio: ModuleType, loop: Any) -> None:
    # asyncio does not validate maxsize: the comparison fails on use.
    q = aio.Queue(None)
    assert q.maxsize is None
    message = r"^'<=' not supported between instances of 'NoneType' and 'int'$"
    with pytest.raises(TypeError, match=message):
        q.put_nowait(1)
    with pytest.raises(TypeError, match=message):
        loop.run_until_complete(q.put(1))
    assert q.empty()
    fq = aio.Queue(1.5)

    async def main() -> list[Any]:
        await fq.put(1)
        full_after_one = fq.full()
        await fq.put(2)
        return [full_after_one, fq.full(), fq.qsize()]

    assert loop.run_until_complete(main()) == [False, True, 2]


def test_generic_alias(aio: ModuleType) -> None:
    for cls in (aio.Queue, aio.PriorityQueue, aio.LifoQueue):
        alias = cls[int]
        assert isinstance(alias, types.GenericAlias)
        assert alias.__origin__ is cls
        assert alias.__args__ == (int,)


def test_priority_and_lifo_order(aio: ModuleType, loop: Any) -> None:
    async def drain(q: Any, items: list[Any]) -> list[Any]:
        for item in items:
            await q.put(item)
        assert _fmt(q).startswith("maxsize=0 _queue=")
        return [await q.get() for _ in items]

    items = [(3, "c"), (1, "a"), (2, "b"), (0, "z")]
    assert loop.run_until_complete(drain(aio.PriorityQueue(), items)) == sorted(items)
    assert loop.run_until_complete(drain(aio.LifoQueue(), items)) == items[::-1]
    assert loop.run_until_complete(drain(aio.Queue(), items)) == items


def test_getters_are_woken_in_order(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()
    trace: list[Any] = []

    async def getter(name: str) -> None:
        trace.append((name, await q.get()))

    async def main() -> None:
        tasks = [loop.create_task(getter(n)) for n in "abc"]
        await aio.sleep(0)
        for i in range(3):
            q.put_nowait(i)
        trace.append(q.qsize())
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert trace == [3, ("a", 0), ("b", 1), ("c", 2)]


def test_putters_are_woken_in_order(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue(1)
    trace: list[Any] = []

    async def putter(item: str) -> None:
        await q.put(item)
        trace.append(f"put {item}")

    async def main() -> None:
        q.put_nowait("first")
        tasks = [loop.create_task(putter(n)) for n in "abc"]
        await aio.sleep(0)
        for _ in range(4):
            trace.append(await q.get())
            await aio.sleep(0)
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert trace == ["first", "put a", "a", "put b", "b", "put c", "c"]


def test_bounded_producer_consumer_trace(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue(2)
    trace: list[str] = []

    async def producer() -> None:
        for i in range(6):
            await q.put(i)
            trace.append(f"p{i}")
        await q.join()
        trace.append("joined")

    async def consumer(name: str) -> None:
        while True:
            item = await q.get()
            trace.append(f"{name}{item}")
            if item % 2:
                await aio.sleep(0)
            q.task_done()
            if item >= 4:
                return

    async def main() -> None:
        tasks = [loop.create_task(consumer("a")), loop.create_task(producer()),
                 loop.create_task(consumer("b"))]
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert trace == [
        "p0", "p1", "b0", "b1", "p2", "p3", "b2", "b3", "p4", "p5", "b4", "a5", "joined",
    ]


def test_cancelled_getter_passes_item_on(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()

    async def main() -> list[Any]:
        a = loop.create_task(q.get())
        b = loop.create_task(q.get())
        await aio.sleep(0)
        q.put_nowait("item")  # wakes a ...
        a.cancel()  # ... which is cancelled before it can take it
        got = await b
        return [a.cancelled(), got, q.qsize(), _fmt(q)]

    assert loop.run_until_complete(main()) == [True, "item", 0, "maxsize=0 tasks=1"]


def test_cancelled_putter_passes_room_on(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue(1)

    async def main() -> list[Any]:
        q.put_nowait(0)
        a = loop.create_task(q.put("a"))
        b = loop.create_task(q.put("b"))
        await aio.sleep(0)
        first = q.get_nowait()  # wakes a ...
        a.cancel()  # ... which is cancelled before it can put
        await b
        return [first, a.cancelled(), q.get_nowait(), q.empty()]

    assert loop.run_until_complete(main()) == [0, True, "b", True]


def test_getter_cancelled_while_waiting(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()

    async def main() -> list[Any]:
        t = loop.create_task(q.get())
        await aio.sleep(0)
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
        q.put_nowait(1)
        return [t.cancelled(), _fmt(q), await q.get()]

    assert loop.run_until_complete(main()) == [True, "maxsize=0 _queue=[1] tasks=1", 1]


def test_woken_getter_finding_queue_empty_waits_again(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()
    trace: list[Any] = []

    async def getter(name: str) -> None:
        trace.append((name, await q.get()))

    async def main() -> None:
        a = loop.create_task(getter("a"))
        await aio.sleep(0)
        q.put_nowait(1)  # wakes a, but we take the item first
        trace.append(("main", q.get_nowait()))
        await aio.sleep(0)
        trace.append(_fmt(q))
        q.put_nowait(2)
        await a

    loop.run_until_complete(main())
    assert trace == [("main", 1), "maxsize=0 _getters[1] tasks=1", ("a", 2)]


def test_task_done_and_join(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()
    trace: list[str] = []

    async def worker() -> None:
        while True:
            item = await q.get()
            await aio.sleep(0)
            trace.append(f"done {item}")
            q.task_done()

    async def main() -> None:
        await q.join()  # nothing put: returns at once
        w = loop.create_task(worker())
        for i in range(3):
            q.put_nowait(i)
        await q.join()
        trace.append("joined")
        w.cancel()
        await asyncio.gather(w, return_exceptions=True)

    loop.run_until_complete(main())
    assert trace == ["done 0", "done 1", "done 2", "joined"]
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()


def test_subclass_routes_through_overrides(aio: ModuleType, loop: Any) -> None:
    calls: list[str] = []

    class Tracing(aio.Queue):  # type: ignore[name-defined,misc]
        def put_nowait(self, item: Any) -> None:
            calls.append(f"put_nowait {item}")
            super().put_nowait(item)

        def get_nowait(self) -> Any:
            calls.append("get_nowait")
            return super().get_nowait()

        def full(self) -> bool:
            calls.append("full")
            return bool(super().full())

        def empty(self) -> bool:
            calls.append("empty")
            return bool(super().empty())

    class Storage(aio.Queue):  # type: ignore[name-defined,misc]
        def _init(self, maxsize: int) -> None:
            self._queue = []
            self.note = "custom"

        def _put(self, item: Any) -> None:
            calls.append(f"_put {item}")
            self._queue.append(item)

        def _get(self) -> Any:
            calls.append("_get")
            return self._queue.pop(0)

    async def main() -> list[Any]:
        q = Tracing()
        await q.put(1)
        got = await q.get()
        s = Storage(1)
        await s.put("x")
        return [got, await s.get(), s.note]

    assert loop.run_until_complete(main()) == [1, "x", "custom"]
    assert calls == [
        "full", "put_nowait 1", "full", "empty", "get_nowait", "empty",
        "_put x", "_get",
    ]


def test_bound_to_a_different_loop(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()

    async def wait_briefly() -> None:
        t = loop.create_task(q.get())
        await aio.sleep(0)
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)

    loop.run_until_complete(wait_briefly())
    q.put_nowait(1)
    other = aio.new_event_loop()
    try:
        assert other.run_until_complete(q.get()) == 1  # no wait: no check
        with pytest.raises(RuntimeError) as info:
            other.run_until_complete(q.get())
    finally:
        other.close()
    assert str(info.value) == f"{q!r} is bound to a different event loop"


def test_no_shutdown_before_313(aio: ModuleType) -> None:
    if sys.version_info >= (3, 13):
        assert aio.QueueShutDown is asyncio.QueueShutDown
        assert "QueueShutDown" in aio.__all__
    else:
        assert not hasattr(aio.Queue(), "shutdown")
        assert not hasattr(aio, "QueueShutDown")


needs_shutdown = pytest.mark.skipif(sys.version_info < (3, 13), reason="3.13+ API")


@needs_shutdown
def test_shutdown_lets_gets_drain(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()

    async def main() -> list[Any]:
        q.put_nowait(1)
        q.put_nowait(2)
        q.shutdown()
        out: list[Any] = [_fmt(q)]
        try:
            q.put_nowait(3)
        except asyncio.QueueShutDown as e:
            out.append(("put_nowait", e.args))
        try:
            await q.put(3)
        except asyncio.QueueShutDown as e:
            out.append(("put", e.args))
        out.append(await q.get())
        out.append(q.get_nowait())
        try:
            q.get_nowait()
        except asyncio.QueueShutDown:
            out.append("get_nowait refused")
        try:
            await q.get()
        except asyncio.QueueShutDown:
            out.append("get refused")
        return out

    assert loop.run_until_complete(main()) == [
        "maxsize=0 _queue=[1, 2] tasks=2 shutdown", ("put_nowait", ()), ("put", ()), 1, 2,
        "get_nowait refused", "get refused",
    ]


@needs_shutdown
def test_shutdown_wakes_blocked_callers(aio: ModuleType, loop: Any) -> None:
    empty, full = aio.Queue(), aio.Queue(1)
    trace: list[Any] = []

    async def call(name: str, coro: Any) -> None:
        try:
            trace.append((name, await coro))
        except asyncio.QueueShutDown:
            trace.append((name, "shut down"))

    async def main() -> None:
        full.put_nowait("x")
        tasks = [loop.create_task(call("get", empty.get())),
                 loop.create_task(call("put", full.put("y"))),
                 loop.create_task(call("join", full.join()))]
        await aio.sleep(0)
        empty.shutdown()
        full.shutdown()
        trace.append(_fmt(full))
        for t in tasks[:2]:
            await t
        trace.append(tasks[2].done())
        trace.append(full.get_nowait())
        full.task_done()
        await tasks[2]

    loop.run_until_complete(main())
    assert trace == [
        "maxsize=1 _queue=['x'] tasks=1 shutdown",
        ("get", "shut down"), ("put", "shut down"), False, "x", ("join", None),
    ]


@needs_shutdown
def test_shutdown_immediate(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue()
    trace: list[Any] = []

    async def main() -> None:
        for i in range(3):
            q.put_nowait(i)
        q.get_nowait()  # taken but not marked done
        joiner = loop.create_task(q.join())
        await aio.sleep(0)
        q.shutdown(immediate=True)
        trace.append(_fmt(q))
        try:
            await q.get()
        except asyncio.QueueShutDown:
            trace.append("get refused")
        trace.append(joiner.done())
        q.task_done()
        await joiner
        trace.append("joined")
        with pytest.raises(ValueError):
            q.task_done()

    loop.run_until_complete(main())
    assert trace == ["maxsize=0 tasks=1 shutdown", "get refused", False, "joined"]


def test_bounded_priority_queue_blocks_and_wakes(aio: ModuleType, loop: Any) -> None:
    q = aio.PriorityQueue(2)
    trace: list[Any] = []

    async def putter(item: int) -> None:
        await q.put(item)
        trace.append(f"put {item}")

    async def main() -> None:
        q.put_nowait(5)
        q.put_nowait(3)
        tasks = [loop.create_task(putter(i)) for i in (4, 1)]
        await aio.sleep(0)
        trace.append(_fmt(q))
        for _ in range(4):
            trace.append(await q.get())
            await aio.sleep(0)
        for t in tasks:
            await t

    loop.run_until_complete(main())
    assert trace == [
        "maxsize=2 _queue=[3, 5] _putters[2] tasks=2",
        3, "put 4", 4, "put 1", 1, 5,
    ]


@needs_shutdown
def test_put_on_full_shut_down_queue(aio: ModuleType, loop: Any) -> None:
    q = aio.Queue(1)
    q.put_nowait(1)
    q.shutdown()
    with pytest.raises(asyncio.QueueShutDown):
        loop.run_until_complete(q.put(2))
    with pytest.raises(asyncio.QueueShutDown):
        q.put_nowait(2)
    assert _fmt(q) == "maxsize=1 _queue=[1] tasks=1 shutdown"

"""to_thread() and run_coroutine_threadsafe(), run on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from types import ModuleType
from typing import Any

import pytest

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def test_to_thread_result_args_and_thread(aio: ModuleType, loop: Any) -> None:
    def work(a: int, *, b: int) -> tuple[int, bool]:
        return a + b, threading.current_thread() is threading.main_thread()

    async def main() -> Any:
        return await aio.to_thread(work, 1, b=2)

    assert loop.run_until_complete(main()) == (3, False)


def test_to_thread_copies_context(aio: ModuleType, loop: Any) -> None:
    def work() -> str:
        value = var.get()
        var.set("changed in thread")  # must not leak back
        return value

    async def main() -> tuple[str, str]:
        var.set("from task")
        return await aio.to_thread(work), var.get()

    assert loop.run_until_complete(main()) == ("from task", "from task")


def test_to_thread_exception(aio: ModuleType, loop: Any) -> None:
    def work() -> None:
        raise KeyError("k")

    async def main() -> None:
        with pytest.raises(KeyError):
            await aio.to_thread(work)

    loop.run_until_complete(main())


def test_to_thread_needs_running_loop(aio: ModuleType) -> None:
    coro = aio.to_thread(print)
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        coro.send(None)


def test_run_coroutine_threadsafe_result(aio: ModuleType, loop: Any) -> None:
    results: list[Any] = []

    async def work(x: int) -> int:
        await aio.sleep(0)
        return x * 2

    def in_thread() -> None:
        fut = aio.run_coroutine_threadsafe(work(21), loop)
        assert isinstance(fut, concurrent.futures.Future)
        results.append(fut.result(timeout=5))

    async def main() -> None:
        t = threading.Thread(target=in_thread)
        t.start()
        while t.is_alive():
            await aio.sleep(0.001)
        t.join()

    loop.run_until_complete(main())
    assert results == [42]


def test_run_coroutine_threadsafe_exception(aio: ModuleType, loop: Any) -> None:
    async def work() -> None:
        raise KeyError("k")

    async def main() -> None:
        fut = aio.run_coroutine_threadsafe(work(), loop)
        while not fut.done():
            await aio.sleep(0.001)
        with pytest.raises(KeyError):
            fut.result()

    loop.run_until_complete(main())


def test_run_coroutine_threadsafe_cancel_cancels_task(aio: ModuleType, loop: Any) -> None:
    state: list[str] = []

    async def work() -> None:
        try:
            await aio.sleep(1)
        except asyncio.CancelledError:
            state.append("task cancelled")
            raise

    async def main() -> None:
        fut = aio.run_coroutine_threadsafe(work(), loop)
        await aio.sleep(0.001)
        assert fut.cancel()
        for _ in range(10):
            await aio.sleep(0)
        assert fut.cancelled()

    loop.run_until_complete(main())
    assert state == ["task cancelled"]


def test_run_coroutine_threadsafe_cancelled_before_start(aio: ModuleType, loop: Any) -> None:
    state: list[str] = []

    async def work() -> None:
        state.append("started")
        try:
            await aio.sleep(1)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    async def main() -> None:
        fut = aio.run_coroutine_threadsafe(work(), loop)
        fut.cancel()
        for _ in range(5):
            await aio.sleep(0)

    loop.run_until_complete(main())
    # The task is made (and takes its first step) before the cancellation,
    # which crosses over through call_soon_threadsafe.
    assert state == ["started", "cancelled"]


def test_run_coroutine_threadsafe_requires_coroutine(aio: ModuleType, loop: Any) -> None:
    with pytest.raises(TypeError, match=r"^A coroutine object is required$"):
        aio.run_coroutine_threadsafe(lambda: None, loop)
    fut = loop.create_future()
    with pytest.raises(TypeError, match=r"^A coroutine object is required$"):
        aio.run_coroutine_threadsafe(fut, loop)

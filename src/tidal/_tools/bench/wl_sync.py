"""Workloads of synchronisation: Event, Queue, and handing work across threads."""

from __future__ import annotations

import threading
import time
from typing import Any

from tidal._tools.bench.registry import US_PER_OP, Workload, countdown, register, run_main


def event_pingpong(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: a round trip between two tasks through two Events (2 sets, 2 waits)."""

    async def main() -> float:
        ping, pong = aio.Event(), aio.Event()

        async def responder() -> None:
            for _ in range(n):
                await ping.wait()
                ping.clear()
                pong.set()

        other = aio.create_task(responder())
        start = time.perf_counter()
        for _ in range(n):
            ping.set()
            await pong.wait()
            pong.clear()
        elapsed = time.perf_counter() - start
        await other
        return elapsed

    return {US_PER_OP.key: run_main(aio, factory, main) / n * 1e6}


def queue_put_get(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: one item through ``Queue(maxsize=1000)``: a producer's put, a consumer's get."""

    async def main() -> float:
        queue = aio.Queue(1000)

        async def producer() -> None:
            put = queue.put
            for i in range(n):
                await put(i)

        async def consumer() -> None:
            get = queue.get
            for _ in range(n):
                await get()

        start = time.perf_counter()
        await aio.gather(aio.create_task(producer()), aio.create_task(consumer()))
        return time.perf_counter() - start

    return {US_PER_OP.key: run_main(aio, factory, main) / n * 1e6}


def call_soon_threadsafe(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: a callback posted by another thread with ``call_soon_threadsafe`` and run.

    Time from starting the posting thread to the last callback running.
    """

    async def main() -> float:
        loop = aio.get_running_loop()
        done, callback = countdown(loop, n)

        def poster() -> None:
            post = loop.call_soon_threadsafe
            for _ in range(n):
                post(callback)

        thread = threading.Thread(target=poster)
        start = time.perf_counter()
        thread.start()
        await done
        elapsed = time.perf_counter() - start
        thread.join()
        return elapsed

    return {US_PER_OP.key: run_main(aio, factory, main) / n * 1e6}


def to_thread_roundtrip(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: ``await to_thread(f)`` of a trivial f, one at a time."""

    def trivial() -> None:
        pass

    async def main() -> float:
        to_thread = aio.to_thread
        await to_thread(trivial)  # the executor's thread starts outside the clock
        start = time.perf_counter()
        for _ in range(n):
            await to_thread(trivial)
        return time.perf_counter() - start

    return {US_PER_OP.key: run_main(aio, factory, main) / n * 1e6}


register(Workload(
    "event_pingpong", "Event ping-pong", event_pingpong, 100_000, 5_000,
    floor="floor_handoff",
))
register(Workload(
    "queue", "Queue put/get", queue_put_get, 300_000, 30_000, floor="floor_deque",
))
register(Workload(
    "call_soon_threadsafe", "call_soon_threadsafe", call_soon_threadsafe, 200_000, 20_000,
    floor="floor_thread_post",
))
register(Workload(
    "to_thread", "to_thread round trip", to_thread_roundtrip, 5_000, 500,
    floor="floor_thread_roundtrip",
))

"""Workloads of synchronisation: Event, Queue, cancellation, and handing work across threads."""

from __future__ import annotations

import random
import socket
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


_STORM_ROUNDS = 10
#: socketpairs per kind of socket wait (sock_recv, stream read): 4 x 128 fds in all
_STORM_PAIRS = 128


def cancel_storm(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: a task blocked in Queue.get, Lock.acquire, a socket read or sleep, cancelled.

    n tasks in ten rounds: n/10 tasks start and park (a quarter each on one
    Queue, one held Lock and a long sleep; the rest on socket reads, one
    reader per socket on 256 socketpairs shared by all rounds, half through
    ``sock_recv`` and half through a stream, then on the Queue), then all are
    cancelled in a random order, a thousand per loop turn, and gathered.
    (Queue and Lock find a cancelled waiter by a linear search, as asyncio's
    do, so the cost per task grows with the round's size.)
    """
    rng = random.Random(20240602)
    size = max(1, n // _STORM_ROUNDS)
    orders = []
    for _ in range(_STORM_ROUNDS):
        order = list(range(size))
        rng.shuffle(order)
        orders.append(order)

    async def main() -> float:
        loop = aio.get_running_loop()
        create_task = aio.create_task
        queue = aio.Queue()
        lock = aio.Lock()
        await lock.acquire()
        pairs = [socket.socketpair() for _ in range(2 * _STORM_PAIRS)]
        raw = [a for a, _ in pairs[:_STORM_PAIRS]]
        for sock in raw:
            sock.setblocking(False)
        streams = [await aio.open_connection(sock=a) for a, _ in pairs[_STORM_PAIRS:]]

        async def on_queue() -> None:
            await queue.get()

        async def on_lock() -> None:
            await lock.acquire()

        async def on_sleep() -> None:
            await aio.sleep(3600)

        async def on_sock(sock: socket.socket) -> None:
            await loop.sock_recv(sock, 1)

        async def on_stream(reader: Any) -> None:
            await reader.read(1)

        def start(i: int) -> Any:
            kind = i & 3
            if kind == 1:
                return create_task(on_lock())
            if kind == 2:
                return create_task(on_sleep())
            if kind == 3:
                j = i >> 2
                if j < _STORM_PAIRS:
                    return create_task(on_sock(raw[j]))
                if j < 2 * _STORM_PAIRS:
                    return create_task(on_stream(streams[j - _STORM_PAIRS][0]))
            return create_task(on_queue())

        elapsed = 0.0
        try:
            for order in orders:
                t0 = time.perf_counter()
                tasks = [start(i) for i in range(size)]
                await aio.sleep(0)  # every task runs its first step and parks
                for k in range(0, size, 1000):
                    for i in order[k:k + 1000]:
                        tasks[i].cancel()
                    await aio.sleep(0)
                await aio.gather(*tasks, return_exceptions=True)
                elapsed += time.perf_counter() - t0
        finally:
            for _reader, writer in streams:
                writer.close()
            for a, b in pairs:
                a.close()
                b.close()
        return elapsed

    return {US_PER_OP.key: run_main(aio, factory, main) / (size * _STORM_ROUNDS) * 1e6}


register(Workload(
    "event_pingpong", "Event ping-pong", event_pingpong, 100_000, 5_000,
    floor="floor_handoff",
))
register(Workload(
    "queue", "Queue put/get", queue_put_get, 300_000, 30_000, floor="floor_deque",
))
register(Workload(
    "cancel_storm", "cancel storm, 4 kinds of waits", cancel_storm, 50_000, 5_000,
))
register(Workload(
    "call_soon_threadsafe", "call_soon_threadsafe", call_soon_threadsafe, 200_000, 20_000,
    floor="floor_thread_post",
))
register(Workload(
    "to_thread", "to_thread round trip", to_thread_roundtrip, 5_000, 500,
    floor="floor_thread_roundtrip",
))

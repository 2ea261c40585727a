"""Floors: the same jobs done with no event loop at all.

Each floor is the least a runtime could spend on its workload's op in this
interpreter: bare generator switches, a deque, heapq plus epoll, raw
socket syscalls.  No event loop can beat its floor by much, so the distance
from a runtime's number to the floor is what is left to win.
"""

from __future__ import annotations

import gc
import heapq
import os
import queue
import select
import socket
import threading
import time
import tracemalloc
import types
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from tidal._tools.bench import wl_tasks
from tidal._tools.bench.registry import REQ_PER_S, US_PER_OP, Workload, register
from tidal._tools.bench.wl_net import HTTP_RESPONSE, loadgen_rate, spawn_loadgen

_Fn = Callable[[Any, Any, int], dict[str, float]]


def _us(seconds: float, n: int) -> dict[str, float]:
    return {US_PER_OP.key: seconds / n * 1e6}


@types.coroutine
def _park() -> Generator[None, None, None]:
    yield


def floor_coro_run(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: create a trivial coroutine and run it to completion with ``send(None)``."""

    async def trivial() -> None:
        pass

    start = time.perf_counter()
    for _ in range(n):
        try:
            trivial().send(None)
        except StopIteration:
            pass
    return _us(time.perf_counter() - start, n)


def floor_coro_switch(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: resume a suspended coroutine once, round-robin over 100 (a bare switch)."""
    rounds = max(1, n // 100)

    async def spinner() -> None:
        for _ in range(rounds):
            await _park()

    ready = deque(spinner() for _ in range(100))
    start = time.perf_counter()
    popleft, append = ready.popleft, ready.append
    while ready:
        coro = popleft()
        try:
            coro.send(None)
        except StopIteration:
            continue
        append(coro)
    return _us(time.perf_counter() - start, rounds * 100)


def floor_callback(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: append a callback to a deque, pop it and call it; all n appended first."""
    ready: deque[Callable[[], None]] = deque()
    calls = [0]

    def callback() -> None:
        calls[0] += 1

    start = time.perf_counter()
    for _ in range(n):
        ready.append(callback)
    while ready:
        ready.popleft()()
    return _us(time.perf_counter() - start, calls[0])


def _timer_loop(heap: list[tuple[float, int, Any]], fire: Callable[[Any], None]) -> None:
    """Fire *heap*'s entries in time order, sleeping in epoll_wait in between."""
    poller = select.epoll()
    clock = time.monotonic
    try:
        while heap:
            now = clock()
            if heap[0][0] > now:
                poller.poll(heap[0][0] - now)
                now = clock()
            while heap and heap[0][0] <= now:
                fire(heapq.heappop(heap)[2])
    finally:
        poller.close()


def floor_timers(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: one timer in a heapq, fired by a loop that sleeps in epoll_wait.

    The same random delays as the call_later workload.
    """
    delays = wl_tasks._delays(n)
    heap: list[tuple[float, int, Any]] = []

    def noop(_: Any) -> None:
        pass

    start = time.perf_counter()
    base = time.monotonic()
    for seq, delay in enumerate(delays):
        heapq.heappush(heap, (base + delay, seq, None))
    _timer_loop(heap, noop)
    return _us(time.perf_counter() - start, n)


def _sleeping_coros(delays: list[float]) -> float:
    """Run one bare coroutine per delay, each parking once on a heapq timer."""

    @types.coroutine
    def sleep(delay: float) -> Generator[float, None, None]:
        yield delay

    async def sleeper(delay: float) -> None:
        await sleep(delay)

    heap: list[tuple[float, int, Any]] = []
    clock = time.monotonic

    def step(coro: Any) -> None:
        try:
            delay = coro.send(None)
        except StopIteration:
            return
        heapq.heappush(heap, (clock() + delay, id(coro), coro))

    start = time.perf_counter()
    for coro in [sleeper(d) for d in delays]:
        step(coro)
    _timer_loop(heap, step)
    return time.perf_counter() - start


def floor_sleeping_coros(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: a bare coroutine parked on a heapq timer (random delay) and finished."""
    return _us(_sleeping_coros(wl_tasks._delays(n)), n)


def floor_sleeping_100k(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: one of n bare coroutines parked 100 ms on a heapq timer and finished."""
    return _us(_sleeping_coros([0.1] * n), n)


def floor_handoff(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: a round trip between two coroutines woken through a ready deque."""
    ready: deque[Any] = deque()

    async def pinger() -> None:
        for _ in range(n):
            ready.append(pong_coro)
            await _park()

    async def ponger() -> None:
        for _ in range(n):
            await _park()
            ready.append(ping_coro)

    ping_coro, pong_coro = pinger(), ponger()
    pong_coro.send(None)  # parked, waiting for the first ping
    ready.append(ping_coro)
    start = time.perf_counter()
    while ready:
        try:
            ready.popleft().send(None)
        except StopIteration:
            pass
    return _us(time.perf_counter() - start, n)


def floor_deque(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: one item appended to a deque and popped, in batches of 1000."""
    items: deque[int] = deque()
    start = time.perf_counter()
    for base in range(0, n, 1000):
        for i in range(base, base + 1000):
            items.append(i)
        while items:
            items.popleft()
    return _us(time.perf_counter() - start, n - n % 1000 or n)


def floor_thread_post(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: a callable appended to a deque by another thread, popped and called.

    The consumer sleeps in epoll_wait on a pipe when the deque is empty; the
    producer writes to the pipe only when told the consumer is asleep.
    """
    posted: deque[Callable[[], None]] = deque()
    read_fd, write_fd = os.pipe()
    poller = select.epoll()
    poller.register(read_fd, select.EPOLLIN)
    asleep = [False]
    calls = [0]

    def callback() -> None:
        calls[0] += 1

    def producer() -> None:
        for _ in range(n):
            posted.append(callback)
            if asleep[0]:
                asleep[0] = False
                os.write(write_fd, b"\0")
        os.write(write_fd, b"\0")

    thread = threading.Thread(target=producer)
    start = time.perf_counter()
    thread.start()
    while calls[0] < n:
        try:
            posted.popleft()()
        except IndexError:
            asleep[0] = True
            if not posted:
                poller.poll(0.01)
                os.read(read_fd, 4096)
            asleep[0] = False
    elapsed = time.perf_counter() - start
    thread.join()
    poller.close()
    os.close(read_fd)
    os.close(write_fd)
    return _us(elapsed, n)


def floor_thread_roundtrip(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: a call handed to a worker thread and its result handed back (two SimpleQueues)."""
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
    replies: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def worker() -> None:
        while (fn := requests.get()) is not None:
            replies.put(fn())

    thread = threading.Thread(target=worker)
    thread.start()
    requests.put(int)
    replies.get()
    start = time.perf_counter()
    for _ in range(n):
        requests.put(int)
        replies.get()
    elapsed = time.perf_counter() - start
    requests.put(None)
    thread.join()
    return _us(elapsed, n)


def floor_socketpair(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: a 1 KiB round trip over a socketpair: 2 send, 2 recv, 2 epoll_wait."""
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    poller = select.epoll()
    poller.register(left.fileno(), select.EPOLLIN)
    poller.register(right.fileno(), select.EPOLLIN)
    payload = b"x" * 1024
    start = time.perf_counter()
    for _ in range(n):
        left.send(payload)
        poller.poll()
        right.send(right.recv(65536))
        poller.poll()
        left.recv(65536)
    elapsed = time.perf_counter() - start
    poller.close()
    left.close()
    right.close()
    return _us(elapsed, n)


def _raw_server(mode: str, size: int, duration_ms: int) -> dict[str, float]:
    """A bare epoll server (echo or canned HTTP) loaded by the same client process."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    pending: dict[int, memoryview] = {}
    proc = spawn_loadgen(mode, listener.getsockname()[1], size, duration_ms)

    def send(fd: int, data: bytes | memoryview) -> None:
        sent = conns[fd].send(data)
        if sent < len(data):
            pending[fd] = memoryview(data)[sent:]
            poller.modify(fd, select.EPOLLIN | select.EPOLLOUT)
        elif fd in pending:
            del pending[fd]
            poller.modify(fd, select.EPOLLIN)

    try:
        # The client is checked on only when nothing is ready (it closes its
        # connections as it ends): a waitpid() per turn would cost as much
        # as the work being measured.
        while True:
            ready = poller.poll(0.02)
            if not ready and proc.poll() is not None:
                break
            for fd, events in ready:
                if fd == listener.fileno():
                    sock, _ = listener.accept()
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = sock
                    poller.register(sock.fileno(), select.EPOLLIN)
                    continue
                if events & select.EPOLLOUT:
                    send(fd, pending[fd])
                if events & select.EPOLLIN:
                    try:
                        data = conns[fd].recv(1 << 16)
                    except ConnectionError:  # the client's close may reset
                        data = b""
                    if not data:
                        poller.unregister(fd)
                        conns.pop(fd).close()
                    elif mode == "http":
                        send(fd, HTTP_RESPONSE * data.count(b"\r\n\r\n"))
                    else:
                        send(fd, data)
    finally:
        if proc.poll() is None:
            proc.kill()
        for sock in conns.values():
            sock.close()
        listener.close()
        poller.close()
    return loadgen_rate(proc)


def _raw_echo(size: int) -> _Fn:
    def floor(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
        return _raw_server("echo", size, n)

    floor.__doc__ = (
        f"One op: one {size // 1024} KiB request echoed by a bare epoll server "
        "(the load generator's own ceiling)."
    )
    return floor


def floor_http(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: one HTTP/1.1 GET answered by a bare epoll server (the client's ceiling)."""
    return _raw_server("http", 0, n)


def floor_coro_memory(_aio: Any, _factory: Any, n: int) -> dict[str, float]:
    """One op: one bare coroutine suspended at an await; the bytes it holds.

    A task has at least its coroutine (and frame) to keep.
    """

    async def parked() -> None:
        await _park()

    def park_all(count: int = n) -> list[Any]:
        coros = [parked() for _ in range(count)]
        for coro in coros:
            coro.send(None)
        return coros

    def release(coros: list[Any]) -> None:
        for coro in coros:
            coro.close()

    release(park_all(min(n, 1000)))  # a small warm-up, as in the task workload
    gc.collect()
    before = wl_tasks._rss_bytes()
    coros = park_all()
    rss = (wl_tasks._rss_bytes() - before) / n
    release(coros)
    del coros
    gc.collect()
    tracemalloc.start()
    try:
        traced_before = tracemalloc.get_traced_memory()[0]
        coros = park_all()
        traced = (tracemalloc.get_traced_memory()[0] - traced_before) / n
    finally:
        tracemalloc.stop()
    release(coros)
    return {"bytes": traced, "rss_bytes": rss}


def _floor(name: str, title: str, fn: _Fn, n: int, quick_n: int, **kw: Any) -> None:
    register(Workload(name, title, fn, n, quick_n, raw=True, **kw))


_floor("floor_coro_run", "run a bare coroutine", floor_coro_run, 200_000, 20_000)
_floor("floor_coro_switch", "bare coroutine switch", floor_coro_switch, 500_000, 50_000)
_floor("floor_callback", "deque callback", floor_callback, 200_000, 30_000)
_floor("floor_timers", "heapq timers + epoll", floor_timers, 50_000, 5_000)
_floor("floor_sleeping_coros", "coroutines on heapq timers", floor_sleeping_coros, 50_000, 3_000)
_floor(
    "floor_sleeping_100k", "coroutines parked on timers", floor_sleeping_100k, 100_000, 10_000,
    in_process_repeats=False,
)
_floor("floor_handoff", "bare coroutine handoff", floor_handoff, 200_000, 20_000)
_floor("floor_deque", "deque append/popleft", floor_deque, 500_000, 50_000)
_floor("floor_thread_post", "deque fed by a thread", floor_thread_post, 200_000, 20_000)
_floor("floor_thread_roundtrip", "SimpleQueue thread rt", floor_thread_roundtrip, 5_000, 500)
_floor("floor_socketpair", "raw socketpair rt", floor_socketpair, 50_000, 5_000)
for _size in (1, 16, 64):
    _floor(
        f"floor_tcp_echo_{_size}k", f"epoll echo server, {_size} KiB", _raw_echo(_size * 1024),
        1_000, 150, metrics=(REQ_PER_S,), in_process_repeats=False, quick=_size == 1,
        timeout=60,
    )
_floor(
    "floor_http", "epoll HTTP server", floor_http, 1_000, 150, metrics=(REQ_PER_S,),
    in_process_repeats=False, timeout=60,
)
_floor(
    "floor_coro_memory", "bare parked coroutine", floor_coro_memory, 50_000, 5_000,
    metrics=wl_tasks.PARKED_METRICS, in_process_repeats=False,
)

"""Workloads of the core: tasks, switches, callbacks, timers, task memory."""

from __future__ import annotations

import gc
import random
import resource
import time
import tracemalloc
from typing import Any

from tidal._tools.bench.registry import (
    BYTES_PER_TASK,
    MIB,
    US_PER_OP,
    Metric,
    Workload,
    countdown,
    register,
    run_main,
)

#: what the memory workload and its floor report
PARKED_METRICS = (
    Metric("bytes", BYTES_PER_TASK.unit, label="tracemalloc"),
    Metric("rss_bytes", BYTES_PER_TASK.unit, label="RSS"),
)
_TIMER_SPAN = 0.05  # seconds the 50k timers are spread over
_TIMER_COUNT = 50_000


def _per_op_us(seconds: float, n: int) -> dict[str, float]:
    return {US_PER_OP.key: seconds / n * 1e6}


def spawn_gather(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: create a task running a trivial coroutine and collect it with gather()."""

    async def trivial() -> None:
        pass

    async def main() -> float:
        create_task = aio.create_task
        start = time.perf_counter()
        await aio.gather(*[create_task(trivial()) for _ in range(n)])
        return time.perf_counter() - start

    return _per_op_us(run_main(aio, factory, main), n)


def sleep0_switch(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: one task switch, 100 tasks each looping on ``await sleep(0)``."""
    tasks = 100
    rounds = max(1, n // tasks)

    async def spinner() -> None:
        sleep = aio.sleep
        for _ in range(rounds):
            await sleep(0)

    async def main() -> float:
        start = time.perf_counter()
        await aio.gather(*[aio.create_task(spinner()) for _ in range(tasks)])
        return time.perf_counter() - start

    return _per_op_us(run_main(aio, factory, main), rounds * tasks)


def call_soon(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: ``loop.call_soon(cb)`` plus running cb; all n scheduled at once, then run.

    A burst: n handles are alive together, so allocation and cache misses
    count, as they do when a loop falls behind.
    """

    async def main() -> float:
        loop = aio.get_running_loop()
        done, callback = countdown(loop, n)
        schedule = loop.call_soon
        start = time.perf_counter()
        for _ in range(n):
            schedule(callback)
        await done
        return time.perf_counter() - start

    return _per_op_us(run_main(aio, factory, main), n)


def _delays(n: int) -> list[float]:
    # The same random delays on every runtime; the span shrinks with n so
    # that --quick keeps the timer density of the full run.
    rng = random.Random(20240601)
    span = _TIMER_SPAN * n / _TIMER_COUNT
    return [rng.random() * span for _ in range(n)]


def call_later(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: one ``call_later`` timer (random delay up to 50 ms for 50k) set and fired.

    Total time from arming the first timer to the last one firing, divided by
    the number of timers.
    """
    delays = _delays(n)

    async def main() -> float:
        loop = aio.get_running_loop()
        done, fire = countdown(loop, n)
        arm = loop.call_later
        start = time.perf_counter()
        for delay in delays:
            arm(delay, fire)
        await done
        return time.perf_counter() - start

    return _per_op_us(run_main(aio, factory, main), n)


def sleep_timers(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: one task sleeping a random delay (up to 50 ms for 50k tasks), gathered.

    Task creation, the timer inside ``sleep()``, the wake-up and gather()
    together, per task.
    """
    delays = _delays(n)

    async def main() -> float:
        sleep = aio.sleep
        start = time.perf_counter()
        await aio.gather(*[aio.create_task(sleep(d)) for d in delays])
        return time.perf_counter() - start

    return _per_op_us(run_main(aio, factory, main), n)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def parked_task_memory(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: one task parked on a shared future; bytes it holds.

    Measured twice: by tracemalloc (Python allocations only) and by the
    growth of the process's resident memory (everything, allocator slack
    included) with tracemalloc off.
    """

    async def main() -> dict[str, float]:
        loop = aio.get_running_loop()
        create_task = aio.create_task

        async def parked(fut: Any) -> None:
            await fut

        async def park_all(tasks: list[Any], fut: Any, count: int = n) -> None:
            for i in range(count):
                tasks[i] = create_task(parked(fut))
            await aio.sleep(0)  # every task runs its first step and parks

        async def release(tasks: list[Any], fut: Any) -> None:
            fut.set_result(None)
            for task in tasks:
                await task

        # A small warm-up round so that the loop's own lazily made structures
        # are not charged to the tasks; a full-size one would leave freed
        # memory behind for the measured round to reuse, hiding its growth.
        warm = min(n, 1000)
        tasks: list[Any] = [None] * warm
        fut = loop.create_future()
        await park_all(tasks, fut, warm)
        await release(tasks, fut)

        tasks = [None] * n
        fut = loop.create_future()
        gc.collect()
        before = _rss_bytes()
        await park_all(tasks, fut)
        rss = (_rss_bytes() - before) / n
        await release(tasks, fut)

        tasks = [None] * n
        fut = loop.create_future()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await park_all(tasks, fut)
            traced = (tracemalloc.get_traced_memory()[0] - before) / n
        finally:
            tracemalloc.stop()
        await release(tasks, fut)
        return {"bytes": traced, "rss_bytes": rss}

    result: dict[str, float] = run_main(aio, factory, main)
    return result


def sleeping_tasks(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: one of 100k concurrent tasks sleeping 100 ms, created and completed.

    Also reports the process's peak resident memory.
    """

    async def main() -> float:
        sleep = aio.sleep
        create_task = aio.create_task
        start = time.perf_counter()
        await aio.gather(*[create_task(sleep(0.1)) for _ in range(n)])
        return time.perf_counter() - start

    result = _per_op_us(run_main(aio, factory, main), n)
    # ru_maxrss is in KiB on Linux.
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


register(Workload(
    "spawn_gather", "spawn+gather trivial tasks", spawn_gather, 50_000, 3_000,
    floor="floor_coro_run",
))
register(Workload(
    "sleep0_switch", "sleep(0) switch, 100 tasks", sleep0_switch, 200_000, 20_000,
    floor="floor_coro_switch",
))
register(Workload(
    "call_soon", "call_soon burst", call_soon, 200_000, 30_000, floor="floor_callback",
))
register(Workload(
    "call_later", "call_later timers", call_later, _TIMER_COUNT, 5_000,
    floor="floor_timers",
))
register(Workload(
    "sleep_timers", "tasks sleep(random delay)", sleep_timers, _TIMER_COUNT, 3_000,
    floor="floor_sleeping_coros",
))
register(Workload(
    "parked_task_memory", "memory per parked task", parked_task_memory, 50_000, 5_000,
    metrics=PARKED_METRICS,
    floor="floor_coro_memory", in_process_repeats=False,
))
register(Workload(
    "sleeping_tasks", "concurrent sleeping tasks", sleeping_tasks, 100_000, 10_000,
    metrics=(US_PER_OP, Metric(MIB.key, MIB.unit, label="peak RSS")),
    floor="floor_sleeping_100k", in_process_repeats=False,
))

"""A program that hangs on purpose, to see why from outside (docs/debugging.md).

Four tasks wait on each other in a circle: ``flush`` holds a lock until the
queue is drained, the consumers drain nothing until the config is loaded,
and ``load-config`` needs the lock.  Nothing fails; nothing moves.

    python examples/hang.py              # prints its PID, then hangs
    python -m tidal ps PID               # each task: where it waits, who awaits it
    python -m tidal pstree PID           # the same, as a tree

With ``--dump-after SECONDS`` it prints its own call graphs once it has been
stuck that long (``tidal.print_call_graph``), then cancels everything and exits.
With ``--block``, one more task calls ``time.sleep()``: the whole loop stops,
and ``ps``/``pstree`` show that task running, on the blocking line.
"""

import argparse
import os
import time

import tidal as asyncio


async def flush(lock: asyncio.Lock, queue: asyncio.Queue[int]) -> None:
    """Hold the lock until every queued item has been processed."""
    async with lock:
        await queue.join()


async def load_config(lock: asyncio.Lock, ready: asyncio.Event) -> None:
    """Load the config under the lock, then let the consumers start."""
    async with lock:
        ready.set()


async def consume(queue: asyncio.Queue[int], ready: asyncio.Event) -> None:
    """Process queued items, once the config is loaded."""
    await ready.wait()
    while True:
        await queue.get()
        queue.task_done()


def render_report() -> None:
    """A blocking call, by mistake: the loop cannot run anything else meanwhile."""
    time.sleep(3600)


async def report() -> None:
    """Write a report, synchronously."""
    render_report()


async def main(dump_after: float | None, block: bool) -> None:
    """Start the four tasks, which then wait for each other forever."""
    lock, ready, queue = asyncio.Lock(), asyncio.Event(), asyncio.Queue[int]()
    for item in range(3):
        queue.put_nowait(item)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(flush(lock, queue), name="flush")]
        await asyncio.sleep(0)  # flush takes the lock first
        tasks.append(group.create_task(load_config(lock, ready), name="load-config"))
        for n in range(2):
            tasks.append(group.create_task(consume(queue, ready), name=f"consumer-{n}"))
        if block:
            tasks.append(group.create_task(report(), name="report"))
        pid = os.getpid()
        print(f"hang.py: PID {pid}, stuck from now on; try: python -m tidal pstree {pid}",
              flush=True)
        if dump_after is None:
            return  # the group waits for its tasks, which never finish
        await asyncio.sleep(dump_after)
        for task in tasks:
            asyncio.print_call_graph(task)
        for task in tasks:
            task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump-after", type=float, metavar="SECONDS",
                        help="print the call graphs after SECONDS, then exit")
    parser.add_argument("--block", action="store_true",
                        help="also block the whole loop in time.sleep()")
    options = parser.parse_args()
    asyncio.run(main(options.dump_after, options.block))

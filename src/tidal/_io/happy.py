"""Happy eyeballs: connection attempts started in a staggered race (RFC 8305).

Attempt *i + 1* starts when attempt *i* fails or *delay* seconds after it
started, whichever comes first.  The first attempt to succeed wins and every
other is cancelled; the race returns only once all attempts have finished,
so a cancelled attempt has closed its socket by then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def _set_if_pending(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


async def staggered_race(
    loop: Any, coro_fns: Iterable[Callable[[], Any]], delay: float | None
) -> tuple[Any, int | None, list[BaseException | None]]:
    """Run the coroutine functions staggered; ``(winner_result, winner_index, exceptions)``."""
    fns = enumerate(coro_fns)
    winner_result: Any = None
    winner_index: int | None = None
    exceptions: list[BaseException | None] = []
    running: list[Any] = []
    all_done = loop.create_future()

    def task_done(_task: Any) -> None:
        if not all_done.done() and all(t.done() for t in running):
            all_done.set_result(None)

    async def run_one(previous_failed: Any) -> None:
        nonlocal winner_result, winner_index
        if previous_failed is not None:
            timer = None
            if delay is not None:
                timer = loop.call_later(delay, _set_if_pending, previous_failed)
            try:
                await previous_failed
            finally:
                if timer is not None:
                    timer.cancel()
        try:
            index, coro_fn = next(fns)
        except StopIteration:
            return
        this_failed = loop.create_future()
        next_task = loop.create_task(run_one(this_failed))
        next_task.add_done_callback(task_done)
        running.append(next_task)
        exceptions.append(None)
        try:
            result = await coro_fn()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            exceptions[index] = exc
            _set_if_pending(this_failed)  # start the next attempt now
        else:
            winner_index = index
            winner_result = result
            for i, task in enumerate(running):
                if i != index:
                    task.cancel()

    first = loop.create_task(run_one(None))
    first.add_done_callback(task_done)
    running.append(first)
    try:
        await all_done
    finally:
        for task in running:
            task.cancel()
    # Every attempt has finished.  Their frames, kept by the tracebacks of
    # the exceptions listed, reach this list through their closure: return
    # a copy and empty it, so that no cycle is left.
    result = winner_result, winner_index, list(exceptions)
    exceptions.clear()
    return result

"""The private attributes asyncio's Future and Task show, through their lifecycle.

tidal keeps the rarely set ones (cancel message, traceback, debug origin,
_must_cancel, _log_destroy_pending) out of the slots (docs/design.md, "Memory
per parked task"); code outside asyncio still reads and sets them (anyio
reads ``_must_cancel``, test suites ``_source_traceback``). Each test
observes one lifecycle on tidal and on asyncio, the oracle, and compares.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest

import tidal


def _run_on_both(observe: Callable[[Any, Any], list[Any]]) -> None:
    results = []
    for aio in (tidal, asyncio):
        loop = aio.new_event_loop()
        try:
            results.append(observe(aio, loop))
        finally:
            loop.close()
    assert results[0] == results[1]


def test_future_cancel_message_and_exception() -> None:
    def observe(aio: Any, loop: Any) -> list[Any]:
        seen: list[Any] = []
        fut = loop.create_future()
        seen += [fut._cancel_message, fut._exception, fut._log_traceback]
        fut.cancel("stop")
        seen += [fut._cancel_message, fut._exception, fut._state]
        with pytest.raises(aio.CancelledError) as caught:
            fut.result()
        seen.append(caught.value.args)
        failed = loop.create_future()
        failed.set_exception(ValueError("bad"))
        seen += [type(failed._exception), failed._log_traceback, failed._cancel_message]
        failed.exception()
        seen.append(failed._log_traceback)
        failed._log_traceback = False
        return seen

    _run_on_both(observe)


def test_task_cancelled_before_its_first_step() -> None:
    def observe(aio: Any, loop: Any) -> list[Any]:
        seen: list[Any] = []

        async def body() -> None:
            await aio.sleep(1)

        async def main() -> None:
            task = loop.create_task(body())
            seen.extend([task._must_cancel, task._log_destroy_pending, task._cancel_message])
            task.cancel("early")
            seen.extend([task._must_cancel, task._cancel_message, task.cancelling()])
            await aio.sleep(0)
            await aio.sleep(0)
            seen.extend([task._state, task._must_cancel, task._cancel_message, task._exception])
            with pytest.raises(aio.CancelledError) as caught:
                task.result()
            seen.append(caught.value.args)

        loop.run_until_complete(main())
        return seen

    _run_on_both(observe)


def test_task_cancelled_while_parked_keeps_its_own_error() -> None:
    def observe(aio: Any, loop: Any) -> list[Any]:
        seen: list[Any] = []
        raised: list[BaseException] = []

        async def body() -> None:
            try:
                await aio.sleep(1)
            except aio.CancelledError as exc:
                raised.append(exc)
                raise

        async def main() -> None:
            task = loop.create_task(body())
            await aio.sleep(0)
            task.cancel("late")
            seen.extend([task._must_cancel, task._cancel_message, task.cancelling()])
            await aio.sleep(0)
            # Done, nothing retrieved yet: no exception of its own.
            seen.extend([task._state, task._exception, task._must_cancel])
            with pytest.raises(aio.CancelledError) as first:
                task.result()
            seen.extend([first.value is raised[0], first.value.args])
            with pytest.raises(aio.CancelledError) as second:
                task.result()
            seen.extend([second.value is raised[0], task._exception, task.get_stack()])

        loop.run_until_complete(main())
        return seen

    _run_on_both(observe)


def test_log_destroy_pending_of_gathered_coroutines() -> None:
    def observe(aio: Any, loop: Any) -> list[Any]:
        seen: list[Any] = []
        started: list[Any] = []

        async def child() -> None:
            started.append(aio.current_task())
            await aio.sleep(0)

        async def main() -> None:
            task = loop.create_task(child())
            seen.append(task._log_destroy_pending)
            task._log_destroy_pending = False
            seen.append(task._log_destroy_pending)
            task._log_destroy_pending = True
            seen.append(task._log_destroy_pending)
            await task
            outer = aio.gather(child(), child(), child())
            await aio.sleep(0)
            seen.append([t._log_destroy_pending for t in started[1:]])
            # One child's flag changes alone.
            started[2]._log_destroy_pending = True
            seen.append([t._log_destroy_pending for t in started[1:]])
            started[3].cancel("one")
            seen.append([t._log_destroy_pending for t in started[1:]])
            await aio.gather(outer, return_exceptions=True)

        loop.run_until_complete(main())
        return seen

    _run_on_both(observe)


def test_source_traceback_in_debug_mode() -> None:
    def observe(aio: Any, loop: Any) -> list[Any]:
        loop.set_debug(True)

        async def body() -> None:
            pass

        async def main() -> list[Any]:
            fut = loop.create_future()
            task = loop.create_task(body())
            made = aio.Future(loop=loop)
            origins = [bool(fut._source_traceback), bool(task._source_traceback),
                       bool(made._source_traceback)]
            fut.cancel()
            made.set_result(None)
            await task
            return [*origins, fut._source_traceback is not None]

        result: list[Any] = loop.run_until_complete(main())
        loop.set_debug(False)
        loop.run_until_complete(aio.sleep(0))
        return result

    _run_on_both(observe)


def test_destroyed_pending_task_reported_after_uncancel() -> None:
    # cancel() before the first step sets _must_cancel; uncancel() clears it
    # on 3.13 (the task then parks for good and is reported when dropped),
    # not before (the task is cancelled in its first step).
    def observe(aio: Any, loop: Any) -> list[Any]:
        reports: list[str] = []
        loop.set_exception_handler(lambda _loop, ctx: reports.append(ctx["message"]))

        async def body() -> None:
            await loop.create_future()  # never completes

        task = loop.create_task(body())
        task.cancel()
        task.uncancel()
        loop.run_until_complete(aio.sleep(0))
        loop.run_until_complete(aio.sleep(0))
        state = [task._state, task._must_cancel, task.cancelling()]
        del task
        gc.collect()
        return state + reports

    _run_on_both(observe)


def test_a_parked_task_holds_no_record_of_rare_state() -> None:
    """tidal only: the memory a parked task costs (docs/benchmarks.md, memory rows)."""
    loop = tidal.new_event_loop()
    try:

        async def wait(fut: Any) -> None:
            await fut

        async def main() -> None:
            fut = loop.create_future()
            task = loop.create_task(wait(fut))
            await tidal.sleep(0)
            assert task._rare is None and fut._rare is None
            fut.set_result(None)
            await task
            assert task._rare is None

        loop.run_until_complete(main())
    finally:
        loop.close()

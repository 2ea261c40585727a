"""What a task sees when it is woken, and what libraries see of its waiter.

Every test runs on tidal and on stock asyncio (the oracle) through the
``aio``/``loop``/``dropin`` fixtures.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest

import tidal

# -- isinstance and the attributes libraries read ----------------------------


def test_futures_and_tasks_are_asyncio_instances(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[bool]:
        fut = loop.create_future()
        task = loop.create_task(aio.sleep(0))
        checks = [
            isinstance(fut, asyncio.Future),
            isinstance(task, asyncio.Future),
            isinstance(task, asyncio.Task),
            isinstance(fut, asyncio.Task),
            isinstance(fut, aio.Future),
            isinstance(task, aio.Task),
            asyncio.isfuture(fut),
            type(fut).__name__ == "Future",
            type(task).__name__ == "Task",
        ]
        await task
        return checks

    expected = [True, True, True, False, True, True, True, True, True]
    assert loop.run_until_complete(main()) == expected


def test_subclass_reports_itself(aio: ModuleType, loop: Any) -> None:
    class MyFuture(aio.Future):  # type: ignore[name-defined,misc]
        pass

    fut = MyFuture(loop=loop)
    assert fut.__class__ is MyFuture
    assert repr(fut) == "<MyFuture pending>"


def test_fut_waiter_is_done_while_wakeup_is_queued(aio: ModuleType, loop: Any) -> None:
    # anyio delivers a cancellation only when task._fut_waiter is not a done
    # asyncio.Future: a wake-up already on its way must not be cancelled.
    seen: list[Any] = []

    async def main() -> None:
        fut = loop.create_future()

        async def waiter() -> Any:
            return await fut

        task = loop.create_task(waiter())
        await aio.sleep(0)
        w = task._fut_waiter
        seen.append((isinstance(w, asyncio.Future), w.done()))
        fut.set_result(1)
        w = task._fut_waiter
        seen.append((isinstance(w, asyncio.Future), w.done()))
        seen.append(await task)
        seen.append(task._fut_waiter)

    loop.run_until_complete(main())
    assert seen == [(True, False), (True, True), 1, None]


def test_anyio_style_cancel_delivery_keeps_the_item(aio: ModuleType, loop: Any) -> None:
    # The shape of anyio's memory stream receive under a cancel scope: the
    # sender completes the receiver's future, then the scope decides whether
    # to cancel by looking at the waiter.  Nothing may be lost.
    async def main() -> Any:
        fut = loop.create_future()

        async def receive() -> Any:
            try:
                return await fut
            except asyncio.CancelledError:
                return "cancelled"

        task = loop.create_task(receive())
        await aio.sleep(0)
        fut.set_result("item")
        waiter = task._fut_waiter
        if not isinstance(waiter, asyncio.Future) or not waiter.done():
            task.cancel()
        return await task

    assert loop.run_until_complete(main()) == "item"


# -- the outcome of what a task awaited, under a pending cancel() ------------


def test_cancel_after_awaited_task_was_cancelled_keeps_its_message(
    aio: ModuleType, loop: Any
) -> None:
    async def main() -> str:
        t3 = loop.create_task(aio.sleep(10))

        async def w() -> Any:
            return await t3

        t2 = loop.create_task(w())
        await aio.sleep(0)
        t3.cancel("m2")
        await aio.sleep(0)
        t2.cancel()
        try:
            await t2
        except asyncio.CancelledError as exc:
            return repr(exc)
        return "not cancelled"

    assert loop.run_until_complete(main()) == "CancelledError('m2')"


def test_cancel_after_awaited_task_failed(aio: ModuleType, loop: Any) -> None:
    # The failed waiter's exception counts as retrieved (no "never retrieved"
    # report), and the task sees a plain CancelledError.
    reports: list[str] = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx["message"]))

    async def main() -> str:
        async def bad() -> None:
            raise ValueError("x")

        async def g() -> Any:
            return await aio.gather(bad())

        t = loop.create_task(g())
        await aio.sleep(0)
        await aio.sleep(0)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError as exc:
            return repr(exc)
        return "not cancelled"

    assert loop.run_until_complete(main()) == "CancelledError()"
    gc.collect()
    loop.run_until_complete(aio.sleep(0))
    assert reports == []


def test_cancel_after_awaited_future_has_a_result(aio: ModuleType, loop: Any) -> None:
    async def main() -> str:
        fut = loop.create_future()

        async def w() -> Any:
            return await fut

        t = loop.create_task(w())
        await aio.sleep(0)
        fut.set_result(5)
        t.cancel("late")
        try:
            return str(await t)
        except asyncio.CancelledError as exc:
            return repr(exc)

    assert loop.run_until_complete(main()) == "CancelledError('late')"


def test_call_soon_threadsafe_from_loop_thread_keeps_order(aio: ModuleType, loop: Any) -> None:
    order: list[str] = []

    async def main() -> None:
        loop.call_soon(order.append, "a")
        loop.call_soon_threadsafe(order.append, "b")
        loop.call_soon(order.append, "c")
        await aio.sleep(0)
        await aio.sleep(0)

    loop.run_until_complete(main())
    assert order == ["a", "b", "c"]


# -- tracebacks ----------------------------------------------------------------


def _frames(exc: BaseException) -> list[tuple[str, str]]:
    return [
        (os.path.basename(f.filename), f.name) for f in traceback.extract_tb(exc.__traceback__)
    ]


def _chain(aio: ModuleType) -> tuple[Callable[[], Coroutine[Any, Any, Any]], list[Any]]:
    caught: list[Any] = []

    async def leaf() -> None:
        await aio.sleep(0)
        raise ValueError("boom")

    async def mid() -> Any:
        return await aio.gather(leaf())

    async def top() -> Any:
        return await aio.wait_for(mid(), 5)

    async def main() -> None:
        try:
            await top()
        except ValueError as exc:
            caught.append(_frames(exc))
        await top()

    return main, caught


def _user(frames: list[tuple[str, str]]) -> list[bool]:
    return [name == "test_wakeups.py" for name, _ in frames]


@pytest.mark.parametrize("way", ["own-api", "asyncio-api"])
def test_traceback_no_longer_than_asyncio(way: str) -> None:
    results = {}
    for impl in ("asyncio", "tidal"):
        aio = tidal if impl == "tidal" and way == "own-api" else asyncio
        main, caught = _chain(aio)
        try:
            if impl == "asyncio":
                asyncio.run(main())
            else:
                with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
                    runner.run(main())
        except ValueError as exc:
            results[impl] = (caught[0], _frames(exc))
    (aio_inner, aio_outer), (t_inner, t_outer) = results["asyncio"], results["tidal"]
    assert len(t_outer) <= len(aio_outer), (t_outer, aio_outer)
    assert _user(t_outer)[-6:] == _user(aio_outer)[-6:]
    if way == "own-api" or sys.version_info >= (3, 12):
        # (3.11's asyncio.wait_for calls fut.result(): one Future.result frame
        # there in the pure-Python build.)
        assert len(t_inner) <= len(aio_inner), (t_inner, aio_inner)
        assert _user(t_inner) == _user(aio_inner)


def test_no_lint_comment_in_traceback_lines() -> None:
    async def bad() -> None:
        raise ValueError("x")

    try:
        tidal.run(bad())
    except ValueError as exc:
        lines = [f.line or "" for f in traceback.extract_tb(exc.__traceback__)]
    assert not [ln for ln in lines if "# type:" in ln or "# noqa" in ln], lines


# -- fairness under a flood of thread-safe calls ---------------------------------


def test_timers_and_io_run_under_threadsafe_flood(aio: ModuleType, loop: Any) -> None:
    period = 0.01
    duration = 0.5
    counts = {"timer": 0, "io": 0}
    stop = threading.Event()
    rsock, wsock = loop._socketpair() if hasattr(loop, "_socketpair") else __import__(
        "socket"
    ).socketpair()
    rsock.setblocking(False)

    def noop() -> None:
        pass

    def flood() -> None:
        call = loop.call_soon_threadsafe
        while not stop.is_set():
            for _ in range(100):
                call(noop)

    def feeder() -> None:
        while not stop.wait(period):
            wsock.send(b"x")

    def on_readable() -> None:
        counts["io"] += len(rsock.recv(4096))

    def tick() -> None:
        counts["timer"] += 1
        if not stop.is_set():
            loop.call_later(period, tick)

    async def main() -> float:
        loop.add_reader(rsock, on_readable)
        loop.call_later(period, tick)
        threads = [threading.Thread(target=flood) for _ in range(4)]
        threads.append(threading.Thread(target=feeder))
        start = time.monotonic()
        for t in threads:
            t.start()
        try:
            await aio.sleep(duration)
        finally:
            stop.set()
            for t in threads:
                t.join()
            loop.remove_reader(rsock)
        return time.monotonic() - start

    try:
        elapsed = loop.run_until_complete(main())
    finally:
        rsock.close()
        wsock.close()
    ideal = elapsed / period
    # asyncio keeps 30-60% of the ideal rate on a quiet 2-core machine (above
    # 10% under heavy load); before the fix tidal's timers fired under 1% of
    # the time.
    assert counts["timer"] >= 0.05 * ideal, (counts, ideal)
    assert counts["io"] >= 0.05 * ideal, (counts, ideal)
    assert elapsed < duration * 4


# -- interpreter shutdown and Ctrl-C (subprocesses) ------------------------------

_SHUTDOWN_PROG = """
import sys
if sys.argv[1] == "tidal":
    import tidal as asyncio
else:
    import asyncio
async def bad():
    raise ValueError("lost at exit")
async def main():
    global t
    t = asyncio.ensure_future(bad())
    await asyncio.sleep(0)
asyncio.run(main())
"""


def _run_prog(prog: str, impl: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(prog), impl],
        capture_output=True, text=True, timeout=timeout,
    )


def test_unretrieved_exception_reported_at_interpreter_exit() -> None:
    out = {impl: _run_prog(_SHUTDOWN_PROG, impl).stderr for impl in ("asyncio", "tidal")}
    for marker in ("Task exception was never retrieved", "ValueError: lost at exit"):
        assert (marker in out["tidal"]) == (marker in out["asyncio"]), out
        # The oracle really reports it, so the comparison can fail.
        assert marker in out["asyncio"], out
    assert "Exception in default exception handler" not in out["tidal"], out["tidal"]


_CTRL_C_PROG = """
import os, signal, sys, threading, time
if sys.argv[1] == "tidal":
    import tidal as asyncio
else:
    import asyncio

async def spin():
    while True:
        await asyncio.sleep(0)

async def main():
    tasks = [asyncio.ensure_future(spin()) for _ in range(50)]
    def interrupt():
        for delay in (0.05, 0.01, 0.003):
            time.sleep(delay)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    await asyncio.gather(*tasks)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("impl", ["asyncio", "tidal"])
def test_repeated_ctrl_c_during_steps_never_wedges(impl: str) -> None:
    for _ in range(5):
        done = _run_prog(_CTRL_C_PROG, impl, timeout=20)
        assert "interrupted" in done.stdout, done.stderr
        assert "Cannot enter into task" not in done.stderr, done.stderr


def test_foreign_future_repr_names_task_wakeup(dropin: Any) -> None:
    # An asyncio Future made by asyncio code, awaited by the loop's task.
    async def main() -> str:
        fut: asyncio.Future[None] = asyncio.Future()

        async def waiter() -> None:
            await fut

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        text = repr(fut)
        fut.set_result(None)
        await task
        return text

    assert dropin(main()) == "<Future pending cb=[Task.task_wakeup()]>"


def test_no_exception_context_leaks_through_a_foreign_future(dropin: Any) -> None:
    # A task woken by a failed asyncio Future raises a new exception after
    # catching the first: its __context__ is the caught one, not a stale one.
    async def main() -> tuple[str, str]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        foreign: asyncio.Future[None] = asyncio.Future()

        async def waiter() -> None:
            try:
                await foreign
            except KeyError:
                pass
            raise ValueError("after")

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        foreign.set_exception(KeyError("first"))
        try:
            await task
        except ValueError as exc:
            fut.cancel()
            return repr(exc), repr(exc.__context__)
        return "", ""

    assert dropin(main()) == ("ValueError('after')", "None")

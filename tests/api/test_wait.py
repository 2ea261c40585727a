"""wait(), wait_for() and as_completed(), run on tidal and on asyncio (the oracle).

Tests marked DELIBERATE DIFFERENCE are tidal-only: they check "older forms
tutorials still teach" that tidal keeps working on purpose where asyncio
raises.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import warnings
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest
from task_support import child, fail, ticker, value

import tidal

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


@pytest.fixture
def loop(virtual_loop: Any) -> Any:
    """Timers here run on virtual time on tidal (tests/conftest.py); asyncio's stay real."""
    return virtual_loop


# -- wait ------------------------------------------------------------------------


def test_constants(aio: ModuleType) -> None:
    assert aio.FIRST_COMPLETED == "FIRST_COMPLETED"
    assert aio.FIRST_EXCEPTION == "FIRST_EXCEPTION"
    assert aio.ALL_COMPLETED == "ALL_COMPLETED"


def test_wait_all_completed(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        tasks = [loop.create_task(value(aio, i, 0.001 * i)) for i in range(3)]
        done, pending = await aio.wait(tasks)
        assert done == set(tasks) and pending == set()

    loop.run_until_complete(main())


def test_wait_first_completed(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        fast = loop.create_task(value(aio, 1))
        slow = loop.create_task(value(aio, 2, 1))
        done, pending = await aio.wait([fast, slow], return_when=aio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        slow.cancel()

    loop.run_until_complete(main())


def test_wait_first_exception(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        ok = loop.create_task(value(aio, 1))
        bad = loop.create_task(fail(aio, KeyError("k"), 0.002))
        slow = loop.create_task(value(aio, 2, 1))
        done, pending = await aio.wait([ok, bad, slow], return_when=aio.FIRST_EXCEPTION)
        assert done == {ok, bad} and pending == {slow}
        slow.cancel()

    loop.run_until_complete(main())


def test_wait_first_exception_without_exception_waits_all(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        tasks = [loop.create_task(value(aio, i)) for i in range(3)]
        done, pending = await aio.wait(tasks, return_when=aio.FIRST_EXCEPTION)
        assert done == set(tasks) and not pending

    loop.run_until_complete(main())


def test_wait_cancelled_child_is_not_an_exception(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        c = loop.create_task(value(aio, 1, 1))
        slow = loop.create_task(value(aio, 2, 0.005))
        loop.call_soon(c.cancel)
        done, pending = await aio.wait([c, slow], return_when=aio.FIRST_EXCEPTION)
        assert done == {c, slow} and not pending

    loop.run_until_complete(main())


def test_wait_timeout_returns_pending(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        slow = loop.create_task(value(aio, 1, 1))
        done, pending = await aio.wait([slow], timeout=0.001)
        assert done == set() and pending == {slow}
        # The callbacks were removed: the task has no trace of the wait.
        assert not slow._callbacks
        slow.cancel()

    loop.run_until_complete(main())


def test_wait_already_done(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        fut = loop.create_future()
        fut.set_result(1)
        done, pending = await aio.wait({fut}, timeout=0)
        assert done == {fut} and not pending

    loop.run_until_complete(main())


def test_wait_argument_errors(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        fut = loop.create_future()
        with pytest.raises(TypeError, match=r"^expect a list of futures, not Future$"):
            await aio.wait(fut)
        coro = value(aio, 1)
        with pytest.raises(TypeError, match=r"^expect a list of futures, not coroutine$"):
            await aio.wait(coro)
        coro.close()
        with pytest.raises(ValueError, match=r"^Set of Tasks/Futures is empty\.$"):
            await aio.wait([])
        with pytest.raises(ValueError, match=r"^Invalid return_when value: bogus$"):
            await aio.wait([fut], return_when="bogus")

    loop.run_until_complete(main())


def test_wait_with_coroutines_asyncio_raises(loop: Any, aio: ModuleType) -> None:
    # The asyncio side of the deliberate difference below.
    if aio is tidal:
        pytest.skip("tidal accepts coroutines on purpose (see the next tests)")

    async def main() -> None:
        coro = value(aio, 1)
        with pytest.raises(
            TypeError,
            match=r"^Passing coroutines is forbidden, use tasks explicitly\.$",
        ):
            await aio.wait([coro])
        coro.close()

    loop.run_until_complete(main())


def test_deliberate_difference_wait_accepts_coroutines() -> None:
    """DELIBERATE DIFFERENCE: tidal.wait() wraps bare coroutines in tasks."""

    async def main() -> tuple[set[Any], set[Any]]:
        return await tidal.wait([value(tidal, 1), value(tidal, 2, 1)], timeout=0.01)

    loop = tidal.new_event_loop()
    try:
        with pytest.warns(
            DeprecationWarning,
            match=r"^Passing coroutines to wait\(\) is deprecated: they are wrapped in tasks, and "
                  r"the sets returned hold those tasks, not the coroutines \(asyncio raises "
                  r"TypeError here since Python 3\.11\); create the tasks explicitly\.$",
        ):
            done, pending = loop.run_until_complete(main())
        assert [t.result() for t in done] == [1]
        assert all(isinstance(t, tidal.Task) for t in done | pending)
        for t in pending:
            t.cancel()
        loop.run_until_complete(tidal.sleep(0))
    finally:
        loop.close()


def test_deliberate_difference_run_until_complete_wait_of_coroutines() -> None:
    """DELIBERATE DIFFERENCE: the tutorial form run_until_complete(wait([coro...]))."""
    results: list[int] = []

    async def work(n: int) -> None:
        await tidal.sleep(0.001)
        results.append(n)

    asyncio.set_event_loop_policy(None)  # a fresh policy: no loop set yet
    try:
        with pytest.warns(DeprecationWarning, match=r"^There is no current event loop$"):
            loop = tidal.get_event_loop()  # made on demand, as tutorials expect
        assert isinstance(loop, tidal.EventLoop)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            done, pending = loop.run_until_complete(tidal.wait([work(1), work(2)]))
            assert len(done) == 2 and not pending
            assert sorted(results) == [1, 2]
            loop.close()
            loop = tidal.new_event_loop()
            loop.run_until_complete(tidal.wait([work(3)]))
            loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
    assert sorted(results) == [1, 2, 3]


def test_wait_is_cancellable(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        slow = loop.create_task(value(aio, 1, 1))
        waiter = loop.create_task(aio.wait([slow]))
        await aio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not slow.cancelled()
        assert not slow._callbacks
        slow.cancel()

    loop.run_until_complete(main())


# -- wait_for ------------------------------------------------------------------------


def test_wait_for_result(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        a = await aio.wait_for(value(aio, 1), 1)
        b = await aio.wait_for(value(aio, 2), None)
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 3)
        c = await aio.wait_for(fut, 1)
        return a, b, c

    assert loop.run_until_complete(main()) == (1, 2, 3)


def test_wait_for_timeout_cancels_inner(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        inner = loop.create_task(value(aio, 1, 1))
        with pytest.raises(TimeoutError) as info:
            await aio.wait_for(inner, 0.001)
        assert inner.cancelled()
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert aio.current_task().cancelling() == 0

    loop.run_until_complete(main())


def test_wait_for_zero_timeout_does_not_start_coroutine(aio: ModuleType, loop: Any) -> None:
    started = []

    async def func() -> None:
        started.append(1)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await aio.wait_for(func(), 0)
        fut = loop.create_future()
        fut.set_result("done")
        assert await aio.wait_for(fut, 0) == "done"
        assert await aio.wait_for(fut, -1) == "done"

    loop.run_until_complete(main())
    assert started == []


def test_wait_for_inner_swallows_cancellation(aio: ModuleType, loop: Any) -> None:
    async def stubborn() -> str:
        try:
            await aio.sleep(1)
        except asyncio.CancelledError:
            return "kept going"
        return "slept"

    async def main() -> Any:
        return await aio.wait_for(stubborn(), 0.001)

    assert loop.run_until_complete(main()) == "kept going"


def test_wait_for_inner_exception(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(KeyError):
            await aio.wait_for(fail(aio, KeyError("k")), 1)

    loop.run_until_complete(main())


def test_wait_for_cancelled_cancels_inner(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        inner = loop.create_task(value(aio, 1, 1))
        outer = loop.create_task(aio.wait_for(inner, 1))
        await aio.sleep(0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert inner.cancelled()

    loop.run_until_complete(main())


def test_wait_for_runs_coroutine_in_which_task(aio: ModuleType, loop: Any) -> None:
    async def who() -> Any:
        return aio.current_task()

    async def main() -> bool:
        return await aio.wait_for(who(), 1) is aio.current_task()

    # 3.12+ awaits the coroutine in the calling task; 3.11 wraps it in a task.
    assert loop.run_until_complete(main()) is PY312


def test_wait_for_shielded(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        inner = loop.create_task(value(aio, "survived", 0.01))
        with pytest.raises(TimeoutError):
            await aio.wait_for(aio.shield(inner), 0.001)
        return await inner

    assert loop.run_until_complete(main()) == "survived"


def test_dropin_asyncio_wait_for(dropin: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def main() -> Any:
        res = await asyncio.wait_for(asyncio.sleep(0, "ok"), 1)
        try:
            await asyncio.wait_for(asyncio.sleep(1), 0.001)
        except TimeoutError:
            res += " timeout"
        t = asyncio.ensure_future(asyncio.sleep(0))
        done, _ = await asyncio.wait([t])
        return res, done == {t}

    assert dropin(main()) == ("ok timeout", True)


# -- as_completed ----------------------------------------------------------------------


def test_as_completed_order(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        aws = [value(aio, 3, 0.003), value(aio, 1, 0.001), value(aio, 2, 0.002)]
        return [await f for f in aio.as_completed(aws)]

    assert loop.run_until_complete(main()) == [1, 2, 3]


def test_as_completed_exception_per_item(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        out: list[Any] = []
        for f in aio.as_completed([fail(aio, KeyError("k")), value(aio, 1, 0.002)]):
            try:
                out.append(await f)
            except KeyError:
                out.append("err")
        return out

    assert loop.run_until_complete(main()) == ["err", 1]


def test_as_completed_timeout(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        slow = loop.create_task(value(aio, "slow", 1))
        out: list[Any] = []
        for f in aio.as_completed([value(aio, "fast"), slow], timeout=0.005):
            try:
                out.append(await f)
            except TimeoutError:
                out.append("timeout")
        assert not slow.done()
        slow.cancel()
        return out

    assert loop.run_until_complete(main()) == ["fast", "timeout"]


def test_as_completed_empty(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        return list(aio.as_completed([], timeout=1))

    assert loop.run_until_complete(main()) == []


def test_as_completed_duplicates(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        t = loop.create_task(value(aio, 1))
        return [await f for f in aio.as_completed([t, t])]

    assert loop.run_until_complete(main()) == [1]


def test_as_completed_argument_errors(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        fut = loop.create_future()
        if PY313:
            with pytest.raises(TypeError, match=r"^expects an iterable of awaitables, not Future$"):
                aio.as_completed(fut)
        else:
            it = aio.as_completed(fut)  # a generator: checks run on first next()
            assert inspect.isgenerator(it)
            with pytest.raises(TypeError, match=r"^expect an iterable of futures, not Future$"):
                next(it)

    loop.run_until_complete(main())


def test_as_completed_concurrent_awaits(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        its = list(aio.as_completed([value(aio, 2, 0.002), value(aio, 1, 0.001)]))
        return list(await aio.gather(*its))

    assert loop.run_until_complete(main()) == [1, 2]


@pytest.mark.skipif(not PY313, reason="async iteration of as_completed is new in 3.13")
def test_as_completed_async_iteration_yields_originals(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        slow = loop.create_task(value(aio, "slow", 0.003))
        fast = loop.create_task(value(aio, "fast", 0.001))
        coro = value(aio, "coro")
        seen = [f async for f in aio.as_completed([slow, fast, coro])]
        assert seen[1] is fast and seen[2] is slow
        assert seen[0].result() == "coro" and isinstance(seen[0], asyncio.Future | tidal.Future)
        with pytest.raises(TimeoutError):
            async for _ in aio.as_completed([loop.create_task(value(aio, 1, 1))], timeout=0):
                pass

    loop.run_until_complete(main())


@pytest.mark.skipif(not PY313, reason="the iterator class is new in 3.13")
def test_as_completed_is_both_iterators(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        it = aio.as_completed([value(aio, 1)])
        assert iter(it) is it
        assert it.__aiter__() is it
        coro = next(it)
        assert inspect.iscoroutine(coro)
        assert await coro == 1
        with pytest.raises(StopIteration):
            next(it)

    loop.run_until_complete(main())


def test_wakeup_order_matches_asyncio(aio: ModuleType, loop: Any) -> None:
    order: list[str] = []

    async def main() -> None:
        a = loop.create_task(child(aio, order, "a", 1))
        b = loop.create_task(child(aio, order, "b", 3))
        side = loop.create_task(ticker(aio, order, 8))
        await aio.wait([a, b], return_when=aio.FIRST_COMPLETED)
        order.append("wait returned")
        for f in aio.as_completed([b]):
            await f
            order.append("as_completed gave b")
        await aio.wait_for(b, 1)
        order.append("wait_for returned")
        await side

    loop.run_until_complete(main())
    expected = [
        "other 0", "a done", "other 1", "other 2", "wait returned", "b done", "other 3",
        "other 4", "as_completed gave b", "wait_for returned", "other 5", "other 6", "other 7",
    ]
    if not PY312:  # 3.11's wait_for waits through a task of its own: two turns later
        expected[9:12] = ["other 5", "other 6", "wait_for returned"]
    assert order == expected

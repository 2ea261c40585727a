"""sleep(), run on tidal and on asyncio (the oracle): result, cancellation, timer accounting."""

from __future__ import annotations

import asyncio
import sys
from types import ModuleType
from typing import Any

import pytest

import tidal


def test_result_and_order(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        order: list[int] = []

        async def one(d: float, i: int) -> int:
            r = await aio.sleep(d, i)
            order.append(r)
            return r

        got = await aio.gather(one(0.03, 3), one(0.01, 1), one(0.02, 2), one(0, 0))
        return got, order

    assert loop.run_until_complete(main()) == ([3, 1, 2, 0], [0, 1, 2, 3])


def test_cancel_message_and_timer_accounting(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        lp = aio.get_running_loop()
        first = aio.ensure_future(aio.sleep(5))  # keeps the cancelled ones off the heap top
        tasks = [aio.ensure_future(aio.sleep(10)) for _ in range(5)]
        await aio.sleep(0)
        assert len(lp._scheduled) == 6
        tasks[0].cancel("stop")
        with pytest.raises(asyncio.CancelledError) as info:
            await tasks[0]
        counted = lp._timer_cancelled_count
        for t in tasks[1:]:
            t.cancel()
        await aio.gather(*tasks, return_exceptions=True)
        after = lp._timer_cancelled_count
        sizes = len(lp._scheduled)
        first.cancel()
        await aio.gather(first, return_exceptions=True)
        await aio.sleep(0)  # the next turn drops the cancelled heap
        return (
            info.value.args, counted, after, sizes, len(lp._scheduled), lp._timer_cancelled_count
        )

    assert loop.run_until_complete(main()) == (("stop",), 1, 5, 6, 0, 0)


def test_cancelled_en_masse_are_purged(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        lp = aio.get_running_loop()
        keep = aio.ensure_future(aio.sleep(0.001, "kept"))
        tasks = [aio.ensure_future(aio.sleep(10 + i)) for i in range(300)]
        await aio.sleep(0)
        for t in tasks:
            t.cancel()
        await aio.gather(*tasks, return_exceptions=True)
        await aio.sleep(0)
        return len(lp._scheduled), lp._timer_cancelled_count, await keep

    assert loop.run_until_complete(main()) == (0, 0, "kept")


def test_timeout_and_wait_for_around_sleep(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        with pytest.raises(TimeoutError):
            async with aio.timeout(0.01):
                await aio.sleep(5)
        with pytest.raises(TimeoutError):
            await aio.wait_for(aio.sleep(5), 0.01)
        r = await aio.wait_for(aio.sleep(0.001, "x"), 1)
        return r, len(aio.get_running_loop()._scheduled)

    # wait_for's cancelled timeout timers are still on the heap (3.12+ has two).
    assert loop.run_until_complete(main()) == ("x", 1 if sys.version_info < (3, 12) else 2)


def test_sleep_uses_overridden_time(aio: ModuleType, loop: Any) -> None:
    calls = []
    real = loop.time

    def fake_time() -> float:
        calls.append(1)
        return real()

    async def main() -> str:
        loop.time = fake_time
        try:
            n = len(calls)
            r = await aio.sleep(0.001, "t")
            assert len(calls) > n
            return r  # type: ignore[no-any-return]
        finally:
            del loop.time

    assert loop.run_until_complete(main()) == "t"


def test_entry_reports_a_future_completed_by_someone_else() -> None:
    from tidal._api.sleep import _SleepTimer

    errors: list[dict[str, Any]] = []
    lp = tidal.new_event_loop()
    try:
        lp.set_exception_handler(lambda _, ctx: errors.append(ctx))
        fut = lp.create_future()
        fut.set_result("other")
        _SleepTimer(fut, "timer")._run()
        cancelled = lp.create_future()
        cancelled.cancel()
        _SleepTimer(cancelled, "timer")._run()
    finally:
        lp.close()
    assert len(errors) == 1
    assert errors[0]["message"].startswith("Exception in callback _set_result_unless_cancelled(")
    assert isinstance(errors[0]["exception"], asyncio.InvalidStateError)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="NaN check is 3.13+")
def test_nan(aio: ModuleType, loop: Any) -> None:
    with pytest.raises(ValueError, match=r"^Invalid delay: NaN \(not a number\)$"):
        loop.run_until_complete(aio.sleep(float("nan")))


def test_subclass_overriding_call_later_is_asked() -> None:
    seen: list[float] = []

    class Loop(tidal.EventLoop):  # type: ignore[misc,name-defined]
        def call_later(self, delay: float, *args: Any, **kw: Any) -> Any:
            seen.append(delay)
            return super().call_later(delay, *args, **kw)

    lp = Loop()
    try:
        assert lp.run_until_complete(tidal.sleep(0.001, 7)) == 7
        lp.set_debug(True)
        assert lp.run_until_complete(tidal.sleep(0.002, 8)) == 8
    finally:
        lp.close()
    assert seen == [0.001, 0.002]
    plain = tidal.new_event_loop()
    try:
        plain.set_debug(True)
        assert plain.run_until_complete(tidal.sleep(0.001, 9)) == 9
        plain.set_debug(False)
        assert plain.run_until_complete(tidal.sleep(0.001, 10)) == 10
    finally:
        plain.close()

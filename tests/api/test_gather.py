"""gather() and shield(), run on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest
from task_support import child, fail, ticker, value

import tidal

PY312 = sys.version_info >= (3, 12)


@pytest.fixture
def loop(virtual_loop: Any) -> Any:
    """Timers here run on virtual time on tidal (tests/conftest.py); asyncio's stay real."""
    return virtual_loop


# -- results ------------------------------------------------------------------


def test_results_in_argument_order(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        return await aio.gather(value(aio, 1, 0.02), value(aio, 2, 0.01), value(aio, 3))

    assert loop.run_until_complete(main()) == [1, 2, 3]


def test_mixed_futures_tasks_and_awaitables(aio: ModuleType, loop: Any) -> None:
    class Awaitable:
        def __await__(self) -> Any:
            return value(aio, "aw").__await__()

    async def main() -> Any:
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "fut")
        task = loop.create_task(value(aio, "task"))
        return await aio.gather(fut, task, value(aio, "coro"), Awaitable())

    assert loop.run_until_complete(main()) == ["fut", "task", "coro", "aw"]


def test_no_arguments_gives_done_future(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        outer = aio.gather()
        assert outer.done()
        return await outer

    assert loop.run_until_complete(main()) == []


def test_duplicates_share_one_child(aio: ModuleType, loop: Any) -> None:
    runs = []

    async def once() -> int:
        runs.append(1)
        await aio.sleep(0)
        return 7

    async def main() -> Any:
        coro = once()
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 1)
        outer = aio.gather(coro, fut, coro, fut, coro)
        assert len(outer._children) == 5
        return await outer

    assert loop.run_until_complete(main()) == [7, 1, 7, 1, 7]
    assert runs == [1]


def test_unhashable_argument(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"^unhashable type: 'list'$"):
            aio.gather([1])

    loop.run_until_complete(main())


def test_non_awaitable_argument(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(
            TypeError, match=r"^An asyncio\.Future, a coroutine or an awaitable is required$"
        ):
            aio.gather(1)

    loop.run_until_complete(main())


def test_futures_of_different_loops(aio: ModuleType, loop: Any) -> None:
    other = aio.new_event_loop()
    try:
        f1 = loop.create_future()
        f2 = other.create_future()
        with pytest.raises(
            ValueError,
            match=r"^The future belongs to a different loop than the one specified as the loop "
                  r"argument$",
        ):
            aio.gather(f1, f2)
    finally:
        other.close()


def test_gathers_are_nestable(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        inner = aio.gather(value(aio, 1), value(aio, 2))
        return await aio.gather(inner, value(aio, 3))

    assert loop.run_until_complete(main()) == [[1, 2], 3]


def test_outer_repr(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[str, str]:
        outer = aio.gather(value(aio, 1), value(aio, 2))
        pending = repr(outer)
        await outer
        return pending, repr(outer)

    pending, done = loop.run_until_complete(main())
    assert pending == "<_GatheringFuture pending>"
    assert done == "<_GatheringFuture finished result=[1, 2]>"


# -- exceptions -----------------------------------------------------------------


def test_first_exception_propagates_others_keep_running(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        slow = loop.create_task(value(aio, "slow", 0.02))
        outer = aio.gather(fail(aio, ValueError("boom")), slow)
        with pytest.raises(ValueError, match=r"^boom$"):
            await outer
        assert not slow.done()
        assert not outer.cancel()  # already done: cancelling it does nothing
        return await slow

    assert loop.run_until_complete(main()) == "slow"


def test_return_exceptions(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        cancelled = loop.create_task(value(aio, 1, 1))
        with_msg = loop.create_task(value(aio, 1, 1))
        loop.call_soon(cancelled.cancel)
        loop.call_soon(with_msg.cancel, "why")
        err = ValueError("x")
        res = await aio.gather(
            value(aio, 1), fail(aio, err), cancelled, with_msg, return_exceptions=True
        )
        assert res[1] is err
        return res

    res = loop.run_until_complete(main())
    assert res[0] == 1
    assert type(res[2]) is asyncio.CancelledError and res[2].args == ("",)
    # asyncio builds these from the child's _cancel_message, which a task
    # cancelled while it waits does not keep: the message is lost.
    assert type(res[3]) is asyncio.CancelledError and res[3].args == ("",)


def test_cancelled_child_is_an_exception_not_a_cancellation(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        child = loop.create_task(value(aio, 1, 1))
        outer = aio.gather(child, value(aio, 2))
        loop.call_soon(child.cancel, "child msg")
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert not outer.cancelled()
        exc = outer.exception()
        assert isinstance(exc, asyncio.CancelledError)
        assert exc.args == ("child msg",)

    loop.run_until_complete(main())


def test_exception_of_late_child_is_marked_retrieved(aio: ModuleType, loop: Any) -> None:
    errors: list[Any] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main() -> None:
        outer = aio.gather(fail(aio, ValueError("first")), fail(aio, KeyError("late"), 0.01))
        with pytest.raises(ValueError):
            await outer
        await aio.sleep(0.03)

    loop.run_until_complete(main())
    gc.collect()
    assert errors == []


# -- cancellation -----------------------------------------------------------------


def test_cancel_outer_cancels_children(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        c1 = loop.create_task(value(aio, 1, 1))
        c2 = loop.create_task(value(aio, 2, 1))
        outer = aio.gather(c1, c2)
        await aio.sleep(0)
        assert outer.cancel(msg="stop")
        assert not outer.cancelled()  # not yet: the children report back first
        with pytest.raises(asyncio.CancelledError) as info:
            await outer
        assert info.value.args == ("stop",)
        assert c1.cancelled() and c2.cancelled()
        # Completed with the children's CancelledError, not cancelled itself.
        assert not outer.cancelled()
        assert isinstance(outer.exception(), asyncio.CancelledError)

    loop.run_until_complete(main())


def test_cancel_outer_with_return_exceptions_still_cancels(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        outer = aio.gather(value(aio, 1, 1), value(aio, 2, 1), return_exceptions=True)
        await aio.sleep(0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer

    loop.run_until_complete(main())


def test_cancel_outer_when_child_ignores_cancellation(aio: ModuleType, loop: Any) -> None:
    async def stubborn() -> str:
        try:
            await aio.sleep(1)
        except asyncio.CancelledError:
            return "ignored"
        return "slept"

    async def main() -> None:
        child = loop.create_task(stubborn())
        outer = aio.gather(child)
        await aio.sleep(0)
        assert outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert child.result() == "ignored"

    loop.run_until_complete(main())


def test_cancel_outer_with_all_children_done_returns_false(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        fut = loop.create_future()
        fut.set_result(1)
        outer = aio.gather(fut)
        if not outer.done():  # 3.11 completes it one turn later
            assert not outer.cancel()
        assert await outer == [1]

    loop.run_until_complete(main())


def test_cancelling_the_awaiting_task_cancels_children(aio: ModuleType, loop: Any) -> None:
    children: list[Any] = []

    async def parent() -> None:
        children.extend([loop.create_task(value(aio, 1, 1)), loop.create_task(value(aio, 2, 1))])
        await aio.gather(*children)

    async def main() -> None:
        task = loop.create_task(parent())
        await aio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(c.cancelled() for c in children)

    loop.run_until_complete(main())


# -- timing and order -------------------------------------------------------------


def test_already_done_children(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        f1 = loop.create_future()
        f2 = loop.create_future()
        f1.set_result(1)
        f2.set_result(2)
        outer = aio.gather(f1, f2)
        # 3.12+ settles children that are already done at once.
        assert outer.done() is PY312
        assert await outer == [1, 2]

    loop.run_until_complete(main())


def test_already_done_child_with_exception(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        f1 = loop.create_future()
        f1.set_exception(KeyError("k"))
        pending = loop.create_future()
        outer = aio.gather(f1, pending)
        assert outer.done() is PY312
        with pytest.raises(KeyError):
            await outer
        pending.cancel()

    loop.run_until_complete(main())


def trace_of(aio: ModuleType, loop: Any) -> list[str]:
    """Who runs when: gather completion relative to other callbacks and tasks."""
    order: list[str] = []

    async def main() -> None:
        fut = loop.create_future()
        fut.add_done_callback(lambda f: order.append("fut cb"))
        loop.call_soon(fut.set_result, "f")
        outer = aio.gather(child(aio, order, "a", 2), fut, child(aio, order, "b", 0))
        outer.add_done_callback(lambda f: order.append("outer cb"))
        loop.create_task(ticker(aio, order, 6))
        res = await outer
        order.append(f"resumed {res}")
        await aio.sleep(0)

    loop.run_until_complete(main())
    return order


def test_callback_order_matches_asyncio(aio: ModuleType, loop: Any) -> None:
    assert trace_of(aio, loop) == [
        "b done", "other 0", "fut cb", "other 1", "a done", "other 2", "other 3",
        "outer cb", "resumed ['a', 'f', 'b']", "other 4", "other 5",
    ]


def test_failure_order_matches_asyncio(aio: ModuleType, loop: Any) -> None:
    order: list[str] = []

    async def main() -> None:
        outer = aio.gather(
            child(aio, order, "a", 1, KeyError("a")),
            child(aio, order, "b", 0, KeyError("b")),
            child(aio, order, "c", 3),
        )
        loop.create_task(ticker(aio, order, 5))
        try:
            await outer
        except KeyError as exc:
            order.append(f"raised {exc}")
        await aio.sleep(0)
        await aio.sleep(0)

    loop.run_until_complete(main())
    assert order == [
        "b done", "other 0", "a done", "other 1", "raised 'b'", "other 2", "c done", "other 3",
        "other 4",
    ]


def test_child_repr_names_its_callback(aio: ModuleType, loop: Any) -> None:
    async def main() -> str:
        child = loop.create_task(value(aio, 1))
        outer = aio.gather(child)
        text = repr(child)
        await outer
        return text

    text = loop.run_until_complete(main())
    assert "cb=[" in text
    assert "Task.task_wakeup" not in text


# -- errors while gathering ---------------------------------------------------------


def test_closed_loop_closes_coroutines(aio: ModuleType) -> None:
    lp = aio.new_event_loop()
    lp.close()
    aio.set_event_loop(lp)
    try:
        fut = lp.create_future()  # a closed loop still makes futures
        assert not fut.done()
        coro = value(aio, 1)
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            aio.gather(fut, coro)
        assert coro.cr_frame is None  # closed: no "never awaited" warning
    finally:
        aio.set_event_loop(None)


# -- shield -------------------------------------------------------------------------


def test_shield_passes_result_and_exception(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        assert await aio.shield(value(aio, 5, 0.001)) == 5
        with pytest.raises(KeyError):
            await aio.shield(fail(aio, KeyError("k"), 0.001))

    loop.run_until_complete(main())


def test_shield_of_done_future_is_the_future(aio: ModuleType, loop: Any) -> None:
    fut = loop.create_future()
    fut.set_result(3)
    assert aio.shield(fut) is fut


def test_shield_protects_inner_from_outer_cancel(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        inner = loop.create_task(value(aio, "inner", 0.01))

        async def waiter() -> Any:
            return await aio.shield(inner)

        w = loop.create_task(waiter())
        await aio.sleep(0)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        assert not inner.cancelled()
        assert await inner == "inner"

    loop.run_until_complete(main())


def test_shield_cancelled_by_inner_cancel(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        inner = loop.create_task(value(aio, 1, 1))
        outer = aio.shield(inner)
        await aio.sleep(0)
        inner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert outer.cancelled()

    loop.run_until_complete(main())


def test_shield_outer_cancelled_leaves_inner_exception_unretrieved(
    aio: ModuleType, loop: Any
) -> None:
    errors: list[Any] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main() -> None:
        inner = loop.create_task(fail(aio, ValueError("v"), 0.005))
        outer = aio.shield(inner)
        outer.cancel()
        await aio.sleep(0.02)
        assert inner.done()

    loop.run_until_complete(main())
    gc.collect()
    # The shield stopped listening when it was cancelled: nobody read it.
    assert [e["message"] for e in errors] == ["Task exception was never retrieved"]


# -- drop-in: asyncio's own gather/shield on tidal's loop -------------------------------


def test_dropin_asyncio_gather(dropin: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def child(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    async def main() -> Any:
        outer = asyncio.gather(*(child(i) for i in range(5)), return_exceptions=True)
        res = await outer
        shielded = await asyncio.shield(child(10))
        return res, shielded

    assert dropin(main()) == ([0, 2, 4, 6, 8], 20)


def test_tidal_gather_on_asyncio_loop() -> None:
    async def child(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def main() -> Any:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result("f")
        return await tidal.gather(child(1), fut, child(2))

    assert asyncio.run(main()) == [1, "f", 2]


def test_gather_outside_running_loop(aio: ModuleType, loop: Any) -> None:
    # The tutorial form: gather() made before the (current) loop runs.
    outer = aio.gather(value(aio, 1), value(aio, 2))
    assert outer.get_loop() is loop
    assert loop.run_until_complete(outer) == [1, 2]


def test_gathering_future_is_an_asyncio_future(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, str, list[int]]:
        outer = aio.gather(aio.sleep(0, 1), aio.sleep(0, 2))
        checks = (isinstance(outer, asyncio.Future), type(outer).__name__)
        return (*checks, await outer)

    assert loop.run_until_complete(main()) == (True, "_GatheringFuture", [1, 2])


def test_gather_uses_its_direct_child_records() -> None:
    # tidal-only: the fast path (a record in the child's callback list, not a
    # bound method in a Handle) must stay in use; type() checks, not __class__.
    from tidal._api.gather import _ChildDone
    from tidal._core.futures import cb_list

    async def main() -> bool:
        child_task = tidal.ensure_future(tidal.sleep(0))
        outer = tidal.gather(child_task)
        direct = type(cb_list(child_task._cbs)[0]) is _ChildDone
        await outer
        return direct

    assert tidal.run(main())

"""TaskGroup, run on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest
from task_support import child, fail, ticker, value

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


@pytest.fixture
def loop(virtual_loop: Any) -> Any:
    """Timers here run on virtual time on tidal (tests/conftest.py); asyncio's stay real."""
    return virtual_loop


def test_waits_for_all_tasks(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        async with aio.TaskGroup() as tg:
            tasks = [tg.create_task(value(aio, i, 0.001 * (3 - i))) for i in range(3)]
            assert not any(t.done() for t in tasks)
        return [t.result() for t in tasks]

    assert loop.run_until_complete(main()) == [0, 1, 2]


def test_empty_group(aio: ModuleType, loop: Any) -> None:
    async def main() -> str:
        async with aio.TaskGroup() as tg:
            pass
        return repr(tg)

    assert loop.run_until_complete(main()) == "<TaskGroup entered>"


def test_repr_progression(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[str]:
        tg = aio.TaskGroup()
        seen = [repr(tg)]
        with pytest.raises(ExceptionGroup):
            async with tg:
                tg.create_task(value(aio, 1, 1))
                tg.create_task(fail(aio, KeyError("k")))
                seen.append(repr(tg))
                try:
                    await aio.sleep(1)
                finally:
                    seen.append(repr(tg))
        seen.append(repr(tg))
        return seen

    assert loop.run_until_complete(main()) == [
        "<TaskGroup>", "<TaskGroup tasks=2 entered>", "<TaskGroup tasks=1 errors=1 cancelling>",
        "<TaskGroup cancelling>",
    ]


def test_child_error_cancels_siblings_and_body(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        body_cancelled = False
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                sibling = tg.create_task(value(aio, 1, 1))
                tg.create_task(fail(aio, ValueError("v")))
                try:
                    await aio.sleep(1)
                except asyncio.CancelledError:
                    body_cancelled = True
                    raise
        assert body_cancelled
        assert sibling.cancelled()
        group = info.value
        assert str(group) == "unhandled errors in a TaskGroup (1 sub-exception)"
        assert [type(e) for e in group.exceptions] == [ValueError]
        assert group.__cause__ is None and group.__suppress_context__
        assert aio.current_task().cancelling() == 0

    loop.run_until_complete(main())


def test_several_errors_collected(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(aio, ValueError("a")))
                tg.create_task(fail(aio, KeyError("b")))
        assert sorted(type(e).__name__ for e in info.value.exceptions) == ["KeyError", "ValueError"]

    loop.run_until_complete(main())


def test_error_in_body(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                child = tg.create_task(value(aio, 1, 1))
                raise ZeroDivisionError
        assert child.cancelled()
        assert [type(e) for e in info.value.exceptions] == [ZeroDivisionError]

    loop.run_until_complete(main())


def test_base_error_in_body_propagates_as_is(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(SystemExit):
            async with aio.TaskGroup() as tg:
                child = tg.create_task(value(aio, 1, 1))
                raise SystemExit(3)
        assert child.cancelled()

    loop.run_until_complete(main())


@pytest.mark.parametrize("where", ["in the body", "waiting in __aexit__"])
def test_parent_cancelled_from_outside(aio: ModuleType, loop: Any, where: str) -> None:
    children: list[Any] = []

    async def parent() -> None:
        async with aio.TaskGroup() as tg:
            children.append(tg.create_task(value(aio, 1, 1)))
            if where == "in the body":
                await aio.sleep(1)

    async def main() -> None:
        task = loop.create_task(parent())
        await aio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert children[0].cancelled()

    loop.run_until_complete(main())


def test_error_while_parent_cancelled_from_outside(aio: ModuleType, loop: Any) -> None:
    state: dict[str, Any] = {}

    async def parent() -> None:
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(aio, KeyError("k"), 0.002))
                try:
                    await aio.sleep(1)
                except asyncio.CancelledError:
                    await aio.sleep(0.005)  # let the child fail meanwhile
                    raise
        finally:
            state["cancelling"] = aio.current_task().cancelling()

    async def main() -> None:
        task = loop.create_task(parent())
        await aio.sleep(0.001)
        task.cancel()
        with pytest.raises(BaseException) as info:
            await task
        state["raised"] = type(info.value)

    loop.run_until_complete(main())
    # The group's errors win over the outside cancellation; the cancel count
    # the parent sees is 1 in every version (3.13 un- and re-cancels).
    assert state == {"cancelling": 1, "raised": ExceptionGroup}


def test_swallowing_group_error_lets_parent_continue(aio: ModuleType, loop: Any) -> None:
    async def main() -> str:
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(aio, KeyError("k")))
                await aio.sleep(1)
        except* KeyError:
            pass
        await aio.sleep(0)  # not cancelled any more
        return f"continued {aio.current_task().cancelling()}"

    assert loop.run_until_complete(main()) == "continued 0"


def test_create_task_errors(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        tg = aio.TaskGroup()
        coro = value(aio, 1)
        with pytest.raises(RuntimeError, match=r"^TaskGroup <TaskGroup> has not been entered$"):
            tg.create_task(coro)
        # 3.13 closes the coroutine it refuses; earlier versions leave it.
        assert (coro.cr_frame is None) is PY313
        coro.close()
        async with tg:
            pass
        coro = value(aio, 1)
        with pytest.raises(RuntimeError, match=r"^TaskGroup <TaskGroup entered> is finished$"):
            tg.create_task(coro)
        coro.close()
        with pytest.raises(
            RuntimeError, match=r"^TaskGroup <TaskGroup entered> has already been entered$"
        ):
            async with tg:
                pass

    loop.run_until_complete(main())


def test_create_task_while_shutting_down(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(ExceptionGroup):
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(aio, KeyError("k")))
                try:
                    await aio.sleep(1)
                except asyncio.CancelledError:
                    coro = value(aio, 1)
                    with pytest.raises(
                        RuntimeError,
                        match=r"^TaskGroup <TaskGroup errors=1 cancelling> is shutting down$",
                    ):
                        tg.create_task(coro)
                    coro.close()
                    raise

    loop.run_until_complete(main())


def test_create_task_while_exiting_with_tasks_left(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        async with aio.TaskGroup() as tg:

            async def spawner() -> int:
                await aio.sleep(0.001)
                tg.create_task(value(aio, "late"))  # the group is exiting: still allowed
                return 1

            tg.create_task(spawner())
        return sorted(map(str, (1, "late")))

    assert loop.run_until_complete(main()) == ["1", "late"]


def test_create_task_name_and_context(aio: ModuleType, loop: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def read() -> str:
        return var.get()

    async def main() -> tuple[str, str, str]:
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in ctx")
        async with aio.TaskGroup() as tg:
            named = tg.create_task(read(), name="worker")
            in_ctx = tg.create_task(read(), context=ctx)
        return named.get_name(), named.result(), in_ctx.result()

    assert loop.run_until_complete(main()) == ("worker", "unset", "in ctx")


def test_needs_a_parent_task(aio: ModuleType, loop: Any) -> None:
    errors: list[str] = []

    def drive() -> None:
        coro = aio.TaskGroup().__aenter__()
        try:
            coro.send(None)
        except RuntimeError as exc:
            errors.append(str(exc))

    loop.call_soon(drive)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert errors == ["TaskGroup <TaskGroup> cannot determine the parent task"]


def test_child_repr_shows_callback(aio: ModuleType, loop: Any) -> None:
    async def main() -> str:
        async with aio.TaskGroup() as tg:
            t = tg.create_task(value(aio, 1, 0.001))
            text = repr(t)
        return text

    assert loop.run_until_complete(main()).endswith("cb=[TaskGroup._on_task_done()]>")


def test_eager_task_done_at_creation(aio: ModuleType, loop: Any) -> None:
    if not PY312:
        pytest.skip("eager tasks are new in 3.12")

    async def quick() -> int:
        return 5

    async def main() -> tuple[bool, int]:
        loop.set_task_factory(aio.eager_task_factory)
        try:
            async with aio.TaskGroup() as tg:
                t = tg.create_task(quick())
                done_at_once = t.done()
        finally:
            loop.set_task_factory(None)
        return done_at_once, t.result()

    assert loop.run_until_complete(main()) == (True, 5)


def test_order_matches_asyncio(aio: ModuleType, loop: Any) -> None:
    order: list[str] = []

    async def main() -> None:
        side = loop.create_task(ticker(aio, order, 8))
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(child(aio, order, "a", 1))
                tg.create_task(child(aio, order, "b", 2, KeyError("b")))
                tg.create_task(child(aio, order, "c", 5))
                await aio.sleep(0)
                order.append("body done")
        except* KeyError:
            order.append("group raised")
        await side

    loop.run_until_complete(main())
    assert order == [
        "other 0", "body done", "other 1", "a done", "other 2", "b done", "other 3",
        "c cancelled", "other 4", "other 5", "group raised", "other 6", "other 7",
    ]


def test_dropin_asyncio_taskgroup(dropin: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def child(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def main() -> Any:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(child(i)) for i in range(3)]
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(child(1))
                tg.create_task(asyncio.sleep(1))
                raise KeyError("k")
        except* KeyError as eg:
            caught = [type(e).__name__ for e in eg.exceptions]
        return [t.result() for t in tasks], caught

    assert dropin(main()) == ([0, 1, 2], ["KeyError"])


def test_when_parent_cancellation_is_withdrawn(aio: ModuleType, loop: Any) -> None:
    seen: list[int] = []

    async def main() -> None:
        parent = aio.current_task()

        async def slow_cleanup() -> None:
            try:
                await aio.sleep(1)
            finally:
                await aio.sleep(0)
                await aio.sleep(0)
                seen.append(parent.cancelling())

        with pytest.raises(ExceptionGroup):
            async with aio.TaskGroup() as tg:
                tg.create_task(slow_cleanup())
                tg.create_task(fail(aio, KeyError("k")))
                await aio.sleep(1)
        seen.append(parent.cancelling())

    loop.run_until_complete(main())
    # 3.11/3.12 withdraw the group's own cancellation of the parent when
    # __aexit__ starts; 3.13 only once the children are done.
    assert seen == ([1, 0] if PY313 else [0, 0])

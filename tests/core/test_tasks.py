"""Task semantics, run on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import re
import sys
from types import ModuleType
from typing import Any

import pytest


def test_create_task_rejects_non_coroutine(loop: Any) -> None:
    with pytest.raises(TypeError, match=r"^a coroutine was expected, got 1$"):
        loop.create_task(1)


def test_task_names_and_set_name(loop: Any) -> None:
    async def nop() -> None:
        pass

    t1 = loop.create_task(nop())
    t2 = loop.create_task(nop(), name="custom")
    assert t1.get_name().startswith("Task-")
    assert t2.get_name() == "custom"
    t1.set_name(42)
    assert t1.get_name() == "42"
    loop.run_until_complete(t1)
    loop.run_until_complete(t2)


def test_task_rejects_set_result(loop: Any) -> None:
    async def nop() -> None:
        pass

    t = loop.create_task(nop())
    with pytest.raises(RuntimeError, match=r"^Task does not support set_result operation$"):
        t.set_result(1)
    with pytest.raises(RuntimeError, match=r"^Task does not support set_exception operation$"):
        t.set_exception(ValueError())
    loop.run_until_complete(t)


def test_cancel_message_reaches_awaiter(aio: ModuleType, loop: Any) -> None:
    async def sleeper() -> None:
        await aio.sleep(10)

    async def main() -> str:
        t = loop.create_task(sleeper())
        await aio.sleep(0)
        t.cancel("stop now")
        try:
            await t
        except asyncio.CancelledError as exc:
            return str(exc.args[0]) if exc.args else ""
        return "not cancelled"

    assert loop.run_until_complete(main()) == "stop now"


def test_cancel_passes_msg_to_waiter_positionally(aio: ModuleType, loop: Any) -> None:
    """task.cancel(msg) cancels the awaited future with ``cancel(msg)``, positional,
    as asyncio's C Task does: a waiter's own cancel() override sees the same call."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    class Recording(aio.Future):  # type: ignore[name-defined,misc]
        def cancel(self, *args: Any, **kwargs: Any) -> bool:
            calls.append((args, kwargs))
            return bool(super().cancel(*args, **kwargs))

    async def main() -> None:
        waiter = Recording(loop=loop)

        async def parked() -> None:
            await waiter

        task = loop.create_task(parked())
        await aio.sleep(0)
        task.cancel("stop")
        with pytest.raises(aio.CancelledError):
            await task

    loop.run_until_complete(main())
    assert calls == [(("stop",), {})]


def test_cancelling_and_uncancel(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[int, int, int, bool]:
        t = loop.create_task(aio.sleep(10))
        await aio.sleep(0)
        t.cancel()
        t.cancel()
        n = t.cancelling()
        left = t.uncancel()
        await aio.sleep(0)
        return n, left, t.cancelling(), t.cancelled()

    n, left, _after, cancelled = loop.run_until_complete(main())
    assert (n, left) == (2, 1)
    assert cancelled


def test_cancel_before_first_step(aio: ModuleType, loop: Any) -> None:
    ran: list[bool] = []

    async def body() -> None:
        ran.append(True)

    async def main() -> bool:
        t = loop.create_task(body())
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return t.cancelled()

    assert loop.run_until_complete(main())
    assert ran == []


def test_catching_cancellation_keeps_task_alive(aio: ModuleType, loop: Any) -> None:
    async def stubborn() -> str:
        try:
            await aio.sleep(10)
        except asyncio.CancelledError:
            return "survived"
        return "slept"

    async def main() -> str:
        t = loop.create_task(stubborn())
        await aio.sleep(0)
        t.cancel()
        return await t  # type: ignore[no-any-return]

    assert loop.run_until_complete(main()) == "survived"


def test_task_exception_propagates(loop: Any) -> None:
    async def bad() -> None:
        raise KeyError("k")

    t = loop.create_task(bad())
    with pytest.raises(KeyError):
        loop.run_until_complete(t)
    assert isinstance(t.exception(), KeyError)


def test_unretrieved_task_exception_logged(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    import gc

    async def bad() -> None:
        raise ValueError("lost")

    async def main() -> None:
        loop.create_task(bad())
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    gc.collect()
    assert "Task exception was never retrieved" in caplog.text


def test_task_context_copy(aio: ModuleType, loop: Any) -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("v", default=0)

    async def child() -> int:
        var.set(var.get() + 1)
        return var.get()

    async def main() -> tuple[int, int]:
        var.set(10)
        r = await loop.create_task(child())
        return r, var.get()

    assert loop.run_until_complete(main()) == (11, 10)


def test_create_task_with_context(aio: ModuleType, loop: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("v", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")

    async def child() -> str:
        return var.get()

    assert loop.run_until_complete(loop.create_task(child(), context=ctx)) == "given"


def test_current_task_and_all_tasks_see_tidal(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, bool, bool]:
        me = asyncio.current_task()
        other = loop.create_task(aio.sleep(0.01))
        everything = asyncio.all_tasks()
        same = aio.current_task() is me
        await other
        return me is not None and same, other in everything, me in everything

    assert loop.run_until_complete(main()) == (True, True, True)


def test_await_itself_is_an_error(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        await asyncio.current_task()  # type: ignore[misc]

    task = loop.create_task(main())
    with pytest.raises(RuntimeError) as err:
        loop.run_until_complete(task)
    # The task's repr as it was when it awaited itself (pending, still running).
    assert re.fullmatch(r"Task cannot await on itself: <Task pending name='Task-\d+' "
                        r"coro=<.*main\(\) running at .*> cb=\[.*\]>", str(err.value))


def test_task_repr_states(aio: ModuleType, loop: Any) -> None:
    async def boom() -> None:
        raise ValueError("x")

    t = loop.create_task(boom(), name="b")
    with pytest.raises(ValueError):
        loop.run_until_complete(t)
    r = repr(t)
    assert r.startswith("<Task finished name='b' coro=<")
    assert r.endswith("exception=ValueError('x')>")

    async def forever() -> None:
        await aio.sleep(10)

    async def main() -> tuple[str, str]:
        t2 = loop.create_task(forever(), name="f")
        await aio.sleep(0)
        waiting = repr(t2)
        t2.cancel()
        cancelling = repr(t2)
        await asyncio.gather(t2, return_exceptions=True)
        return waiting, cancelling + "|" + repr(t2)

    waiting, rest = loop.run_until_complete(main())
    assert "wait_for=<Future pending cb=[Task.task_wakeup()]>" in waiting
    assert rest.split("|")[1].startswith("<Task cancelled name='f' coro=<")


def test_get_stack_of_suspended_task(aio: ModuleType, loop: Any) -> None:
    async def deep() -> None:
        await aio.sleep(10)

    async def main() -> int:
        t = loop.create_task(deep())
        await aio.sleep(0)
        frames = t.get_stack()
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
        return len(frames)

    assert loop.run_until_complete(main()) == 1


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_task_factory(aio: ModuleType, loop: Any) -> None:
    order: list[str] = []

    async def child() -> str:
        order.append("child ran")
        return "done"

    async def main() -> str:
        loop.set_task_factory(aio.eager_task_factory)
        t = loop.create_task(child())
        order.append("after create_task")
        assert t.done()
        return await t  # type: ignore[no-any-return]

    assert loop.run_until_complete(main()) == "done"
    assert order == ["child ran", "after create_task"]


def test_task_factory(aio: ModuleType, loop: Any) -> None:
    made: list[Any] = []

    def factory(lp: Any, coro: Any, **kwargs: Any) -> Any:
        task = aio.Task(coro, loop=lp, **kwargs)
        made.append(task)
        return task

    async def nop() -> int:
        return 1

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    t = loop.create_task(nop(), name="n")
    assert loop.run_until_complete(t) == 1
    assert made == [t] and t.get_name() == "n"
    with pytest.raises(TypeError, match=r"^task factory must be a callable or None$"):
        loop.set_task_factory(1)

"""run() and Runner, run on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import sys
import warnings
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest

import tidal

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def test_run_returns_result(aio: ModuleType) -> None:
    async def main() -> int:
        await aio.sleep(0)
        return 42

    assert aio.run(main()) == 42


def test_run_propagates_exception(aio: ModuleType) -> None:
    async def main() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        aio.run(main())


def test_run_debug(aio: ModuleType) -> None:
    async def main() -> bool:
        return bool(asyncio.get_running_loop().get_debug())

    assert aio.run(main(), debug=True) is True
    assert aio.run(main(), debug=False) is False


def test_run_rejects_non_coroutine(aio: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^a coroutine was expected, got 1$"):
        aio.run(1)

    async def main() -> None:
        pass

    task_like = asyncio.Future  # not a coroutine either
    with pytest.raises(
        ValueError,
        match=r"^a coroutine was expected, got <class '_asyncio\.Future'>$",
    ):
        aio.run(task_like)


def test_run_inside_running_loop(aio: ModuleType) -> None:
    async def inner() -> None:
        pass

    runner = aio.Runner()

    async def main() -> None:
        coro = inner()
        with pytest.raises(
            RuntimeError, match=r"^asyncio\.run\(\) cannot be called from a running event loop$"
        ):
            aio.run(coro)
        coro.close()
        coro = inner()
        with pytest.raises(
            RuntimeError, match=r"^Runner\.run\(\) cannot be called from a running event loop$"
        ):
            runner.run(coro)
        coro.close()

    try:
        aio.run(main())
    finally:
        runner.close()


def test_remaining_tasks_are_cancelled(aio: ModuleType) -> None:
    state: list[str] = []

    async def background() -> None:
        try:
            await aio.sleep(10)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    async def main() -> None:
        aio.get_running_loop().create_task(background())
        await aio.sleep(0)

    aio.run(main())
    assert state == ["cancelled"]


def test_unhandled_exception_during_shutdown_is_reported(aio: ModuleType) -> None:
    contexts: list[dict[str, Any]] = []

    async def background() -> None:
        try:
            await aio.sleep(10)
        except asyncio.CancelledError:
            raise ValueError("failed while cancelled") from None

    async def main() -> None:
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        loop.create_task(background())
        await aio.sleep(0)

    aio.run(main())
    assert [c["message"] for c in contexts] == [
        "unhandled exception during asyncio.run() shutdown"
    ]
    assert isinstance(contexts[0]["exception"], ValueError)


def test_async_generators_are_finalized(aio: ModuleType) -> None:
    state: list[str] = []

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            state.append("closed")

    kept: list[Any] = []

    async def main() -> None:
        gen = agen()
        kept.append(gen)
        await gen.__anext__()

    aio.run(main())
    assert state == ["closed"]


def test_to_thread_then_executor_shutdown(aio: ModuleType) -> None:
    async def main() -> int:
        return await aio.to_thread(lambda: 7)

    assert aio.run(main()) == 7


def test_runner_runs_several_times_in_one_context(aio: ModuleType) -> None:
    async def setter() -> None:
        var.set("set in first run")

    async def getter() -> str:
        return var.get()

    with aio.Runner() as runner:
        loop = runner.get_loop()
        runner.run(setter())
        assert runner.run(getter()) == "set in first run"
        ctx = contextvars.copy_context()
        assert runner.run(getter(), context=ctx) == "unset"
        assert runner.get_loop() is loop
    assert loop.is_closed()
    assert var.get() == "unset"


def test_runner_closed(aio: ModuleType) -> None:
    runner = aio.Runner()
    runner.close()  # never initialized: nothing to do, not closed either
    runner.get_loop()
    runner.close()
    runner.close()  # twice is fine
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()

    async def main() -> None:
        pass

    coro = main()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.run(coro)
    coro.close()


def test_runner_sets_current_loop_only_for_default_factory(aio: ModuleType) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with aio.Runner() as runner:
            assert asyncio.get_event_loop_policy().get_event_loop() is runner.get_loop()
        made: list[Any] = []

        def factory() -> Any:
            made.append(aio.new_event_loop())
            return made[-1]

        asyncio.set_event_loop(None)
        with aio.Runner(loop_factory=factory, debug=True) as runner:
            assert runner.get_loop() is made[0]
            assert made[0].get_debug()
            with pytest.raises(
                RuntimeError,
                match=r"^There is no current event loop in thread 'MainThread'\.$",
            ):
                asyncio.get_event_loop_policy().get_event_loop()
        assert made[0].is_closed()


def test_ctrl_c_cancels_main_task_first(aio: ModuleType) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else here")

    async def main() -> str:
        signal.raise_signal(signal.SIGINT)
        try:
            await aio.sleep(1)
        except asyncio.CancelledError:
            return "cancelled, cleaned up"
        return "not interrupted"

    assert aio.run(main()) == "cancelled, cleaned up"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_becomes_keyboard_interrupt(aio: ModuleType) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else here")

    async def main() -> None:
        signal.raise_signal(signal.SIGINT)
        await aio.sleep(1)

    with pytest.raises(KeyboardInterrupt) as info:
        aio.run(main())
    assert isinstance(info.value.__context__, asyncio.CancelledError)


def test_main_cancelling_itself_raises_cancelled_error(aio: ModuleType) -> None:
    async def main() -> None:
        aio.current_task().cancel()
        await aio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        aio.run(main())


# -- tidal specifics ------------------------------------------------------------------


def test_tidal_run_uses_a_tidal_loop() -> None:
    async def main() -> Any:
        return type(asyncio.get_running_loop())

    assert tidal.run(main()) is tidal.EventLoop
    with tidal.Runner() as runner:
        assert isinstance(runner.get_loop(), tidal.EventLoop)


def test_tidal_run_with_asyncio_loop_factory() -> None:
    """loop_factory is accepted on every version (asyncio 3.11's run() lacks it)."""
    state: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    async def main() -> Any:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert tidal.run(main(), loop_factory=asyncio.new_event_loop).startswith("asyncio")
    assert state == ["cancelled"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run() has loop_factory since 3.12")
def test_asyncio_run_with_tidal_loop_factory() -> None:
    async def main() -> Any:
        results = await asyncio.gather(asyncio.sleep(0, 1), asyncio.sleep(0, 2))
        return results, type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=tidal.new_event_loop) == ([1, 2], tidal.EventLoop)


def test_installed_policy_is_asked_for_the_loop(aio: ModuleType) -> None:
    made: list[Any] = []

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> Any:
            made.append(tidal.new_event_loop() if aio is tidal else super().new_event_loop())
            return made[-1]

    async def main() -> Any:
        return asyncio.get_running_loop()

    asyncio.set_event_loop_policy(Policy())
    try:
        assert aio.run(main()) is made[0]
    finally:
        asyncio.set_event_loop_policy(None)

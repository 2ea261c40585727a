"""Future semantics, run on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys
import types
import typing
from types import ModuleType
from typing import Any

import pytest


def test_result_before_done_raises(loop: Any) -> None:
    fut = loop.create_future()
    with pytest.raises(asyncio.InvalidStateError, match=r"^Result is not set\.$"):
        fut.result()
    with pytest.raises(asyncio.InvalidStateError, match=r"^Exception is not set\.$"):
        fut.exception()


def test_set_result_twice(loop: Any) -> None:
    fut = loop.create_future()
    fut.set_result(1)
    # The C Future's message, which is what asyncio users see.
    with pytest.raises(asyncio.InvalidStateError, match=r"^invalid state$"):
        fut.set_result(2)
    assert fut.result() == 1


def test_exception_class_is_instantiated(loop: Any) -> None:
    fut = loop.create_future()
    fut.set_exception(ValueError)
    assert isinstance(fut.exception(), ValueError)


def test_cancel_with_message(loop: Any) -> None:
    fut = loop.create_future()
    assert fut.cancel("bye")
    assert not fut.cancel()
    assert fut.cancelled() and fut.done()
    with pytest.raises(asyncio.CancelledError, match=r"^bye$"):
        fut.result()


def test_callbacks_run_in_registration_order_through_the_loop(loop: Any) -> None:
    fut = loop.create_future()
    seen: list[Any] = []
    fut.add_done_callback(lambda f: seen.append(("a", f.result())))
    fut.add_done_callback(lambda f: seen.append(("b", f.result())))
    fut.set_result(5)
    assert seen == []  # never synchronously
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [("a", 5), ("b", 5)]


def test_remove_done_callback_counts(loop: Any) -> None:
    fut = loop.create_future()

    def cb(f: Any) -> None:
        pass

    fut.add_done_callback(cb)
    fut.add_done_callback(cb)
    fut.add_done_callback(print)
    assert fut.remove_done_callback(cb) == 2
    assert fut.remove_done_callback(cb) == 0


def test_callback_context(loop: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="none")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    seen: list[str] = []
    fut = loop.create_future()
    fut.add_done_callback(lambda f: seen.append(var.get()), context=ctx)
    fut.set_result(None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["in ctx"]


def test_future_repr(loop: Any) -> None:
    fut = loop.create_future()
    assert repr(fut) == "<Future pending>"
    fut.set_result([1, 2])
    assert repr(fut) == "<Future finished result=[1, 2]>"
    fut2 = loop.create_future()
    fut2.cancel()
    assert repr(fut2) == "<Future cancelled>"


def test_await_future_from_task(loop: Any) -> None:
    async def main() -> int:
        fut = loop.create_future()
        loop.call_later(0.001, fut.set_result, 9)
        return await fut  # type: ignore[no-any-return]

    assert loop.run_until_complete(main()) == 9


def test_stopiteration_is_rejected(loop: Any) -> None:
    import sys

    fut = loop.create_future()
    if sys.version_info >= (3, 13):
        fut.set_exception(StopIteration())
        assert isinstance(fut.exception(), RuntimeError)
    else:
        with pytest.raises(
            TypeError,
            match=r"^StopIteration interacts badly with generators and cannot be raised into a "
                  r"Future$",
        ):
            fut.set_exception(StopIteration())


def test_unretrieved_exception_is_logged(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    fut = loop.create_future()
    fut.set_exception(RuntimeError("boom"))
    del fut
    gc.collect()
    assert "Future exception was never retrieved" in caplog.text


def test_retrieved_exception_is_not_logged(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    fut = loop.create_future()
    fut.set_exception(RuntimeError("boom"))
    fut.exception()
    del fut
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_isfuture(aio: ModuleType, loop: Any) -> None:
    assert aio.isfuture(loop.create_future())
    assert not aio.isfuture(object())
    assert asyncio.isfuture(loop.create_future())


def test_future_generic_alias(aio: ModuleType) -> None:
    for cls in (aio.Future, aio.Task):
        alias = cls[int]
        assert isinstance(alias, types.GenericAlias)
        assert typing.get_origin(alias) is cls and typing.get_args(alias) == (int,)
        assert repr(alias) == f"{cls.__module__}.{cls.__qualname__}[int]"


def test_asyncio_task_awaits_tidal_future_and_back() -> None:
    import tidal

    loop = tidal.new_event_loop()
    try:
        async def inner() -> str:
            f = loop.create_future()
            loop.call_soon(f.set_result, "tidal future")
            return await f  # type: ignore[no-any-return]

        # asyncio's own (C) Task driving a coroutine that awaits a tidal future
        task = asyncio.Task(inner(), loop=loop)
        assert loop.run_until_complete(task) == "tidal future"

        async def outer() -> int:
            af: asyncio.Future[int] = asyncio.Future(loop=loop)
            loop.call_soon(af.set_result, 3)
            return await af

        # a tidal Task awaiting asyncio's own Future
        assert loop.run_until_complete(loop.create_task(outer())) == 3
    finally:
        loop.close()


def test_await_iterator_protocol(loop: Any) -> None:
    """What ``fut.__await__()`` returns behaves as asyncio's (the compiled
    build's native iterator, the pure build's generator, asyncio's C FutureIter)."""
    fut = loop.create_future()
    it = fut.__await__()
    assert next(it) is fut and fut._asyncio_future_blocking
    with pytest.raises(RuntimeError, match=r"^await wasn't used with future$"):
        next(it)
    with pytest.raises(ValueError, match=r"^x$"):
        fut.__await__().throw(ValueError("x"))
    with pytest.raises(TypeError):
        fut.__await__().throw(list)
    assert fut.__await__().close() is None
    fut.set_result(5)
    with pytest.raises(StopIteration) as stop:
        fut.__await__().send(None)
    assert stop.value.value == 5


def test_await_of_done_future_stops_without_traceback_entry(loop: Any) -> None:
    """Resuming an await of a done future raises StopIteration with no entry
    of the future's own: only the caller's frame (asyncio's C FutureIter; the
    compiled build drops mypyc's synthetic entry, setup.py's NO_TRACEBACK_MARK)."""
    fut = loop.create_future()
    fut.set_result(7)
    try:
        next(fut.__await__())
    except StopIteration as stop:
        tb = stop.__traceback__
        assert stop.value == 7
    assert tb is not None and tb.tb_next is None
    assert tb.tb_frame is sys._getframe()

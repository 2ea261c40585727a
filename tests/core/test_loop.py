"""Event-loop behaviour, run on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from types import ModuleType
from typing import Any

import pytest


def test_call_later_order_and_time(loop: Any) -> None:
    seen: list[str] = []
    start = loop.time()
    loop.call_later(0.02, seen.append, "late")
    loop.call_later(0.01, seen.append, "early")
    loop.call_at(start + 0.03, loop.stop)
    loop.run_forever()
    assert seen == ["early", "late"]
    assert loop.time() - start >= 0.029


def test_timer_handle_cancel_and_when(loop: Any) -> None:
    seen: list[int] = []
    h = loop.call_later(0.01, seen.append, 1)
    assert isinstance(h.when(), float)
    h.cancel()
    assert h.cancelled()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert seen == []


def test_handle_repr(loop: Any) -> None:
    def cb(x: int) -> None:
        pass

    import sys

    shown = "()" if sys.version_info >= (3, 13) else "(1)"  # 3.13 hides args unless debug
    h = loop.call_soon(cb, 1)
    r = repr(h)
    assert r.startswith(f"<Handle test_handle_repr.<locals>.cb{shown} at ")
    h.cancel()
    assert repr(h) == "<Handle cancelled>"
    t = loop.call_at(1000.5, cb, 2)
    shown = "()" if sys.version_info >= (3, 13) else "(2)"
    assert repr(t).startswith(f"<TimerHandle when=1000.5 test_handle_repr.<locals>.cb{shown} at ")
    loop.set_debug(True)
    d = loop.call_soon(cb, 3)
    assert repr(d).startswith("<Handle test_handle_repr.<locals>.cb(3) at ")


def test_stop_runs_the_current_batch(loop: Any) -> None:
    seen: list[int] = []
    loop.call_soon(seen.append, 1)
    loop.call_soon(loop.stop)
    loop.call_soon(seen.append, 2)
    loop.run_forever()
    assert seen == [1, 2]
    loop.call_soon(seen.append, 3)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [1, 2, 3]


def test_closed_loop_rejects_work(aio: ModuleType) -> None:
    loop = aio.new_event_loop()
    loop.close()
    loop.close()  # idempotent
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.run_forever()

    async def nop() -> None:
        pass

    coro = nop()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.run_until_complete(coro)
    coro.close()


def test_nested_run_is_refused(loop: Any) -> None:
    async def main() -> None:
        async def nop() -> None:
            pass

        coro = nop()
        try:
            with pytest.raises(RuntimeError, match=r"^This event loop is already running$"):
                loop.run_until_complete(coro)
        finally:
            coro.close()
        with pytest.raises(RuntimeError, match=r"^Cannot close a running event loop$"):
            loop.close()

    loop.run_until_complete(main())


def test_other_loop_running_is_refused(aio: ModuleType, loop: Any) -> None:
    other = aio.new_event_loop()

    async def main() -> None:
        with pytest.raises(
            RuntimeError,
            match=r"^Cannot run the event loop while another loop is running$",
        ):
            other.run_forever()

    try:
        loop.run_until_complete(main())
    finally:
        other.close()


def test_run_until_complete_stopped_early(loop: Any) -> None:
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match=r"^Event loop stopped before Future completed\.$"):
        loop.run_until_complete(fut)


def test_is_running(loop: Any) -> None:
    seen: list[bool] = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    assert not loop.is_running()
    loop.run_forever()
    assert seen == [True]


def test_call_soon_threadsafe_wakes_a_sleeping_loop(loop: Any) -> None:
    fut = loop.create_future()

    def from_thread() -> None:
        time.sleep(0.02)
        loop.call_soon_threadsafe(fut.set_result, threading.current_thread().name)

    th = threading.Thread(target=from_thread, name="feeder")
    th.start()
    assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == "feeder"
    th.join()


def test_many_threadsafe_calls_arrive_in_order(loop: Any) -> None:
    n = 2000
    seen: list[int] = []
    done = loop.create_future()

    def cb(i: int) -> None:
        seen.append(i)
        if i == n - 1:
            done.set_result(None)

    def feeder() -> None:
        for i in range(n):
            loop.call_soon_threadsafe(cb, i)

    th = threading.Thread(target=feeder)
    th.start()
    loop.run_until_complete(asyncio.wait_for(done, 5))
    th.join()
    assert seen == list(range(n))


def test_loop_running_forever_in_another_thread(aio: ModuleType) -> None:
    loop = aio.new_event_loop()
    th = threading.Thread(target=loop.run_forever)
    th.start()
    try:
        async def square(x: int) -> int:
            await aio.sleep(0.001)
            return x * x

        futs = [asyncio.run_coroutine_threadsafe(square(i), loop) for i in range(5)]
        assert [f.result(5) for f in futs] == [0, 1, 4, 9, 16]

        async def forever() -> None:
            await aio.sleep(3600)

        slow = asyncio.run_coroutine_threadsafe(forever(), loop)
        slow.cancel()
        with pytest.raises(Exception) as info:
            slow.result(5)
        assert type(info.value).__name__ == "CancelledError"
        flag = threading.Event()
        loop.call_soon_threadsafe(flag.set)
        assert flag.wait(5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(5)
        loop.close()


def test_exception_in_callback_goes_to_handler(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad() -> None:
        raise ZeroDivisionError

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    ctx = contexts[0]
    assert ctx["message"].startswith("Exception in callback test_exception_in_callback_goes_to_")
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert "handle" in ctx
    with pytest.raises(TypeError, match=r"^A callable object or None is expected, got 1$"):
        loop.set_exception_handler(1)
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_default_exception_handler_logs(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    loop.call_exception_handler({"message": "custom message", "extra": 1})
    assert "custom message" in caplog.text
    assert "extra: 1" in caplog.text


def test_failing_exception_handler_is_logged(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    def handler(lp: Any, ctx: Any) -> None:
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    loop.call_exception_handler({"message": "m"})
    assert "Unhandled error in exception handler" in caplog.text


def test_debug_slow_callback_warning(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    assert loop.get_debug()
    loop.slow_callback_duration = 0.001
    loop.call_soon(time.sleep, 0.01)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert "Executing <Handle sleep(0.01)" in caplog.text and "took" in caplog.text


def test_debug_rejects_coroutine_callbacks(loop: Any) -> None:
    loop.set_debug(True)

    async def coro_fn() -> None:
        pass

    with pytest.raises(TypeError, match=r"^coroutines cannot be used with call_soon\(\)$"):
        loop.call_soon(coro_fn)


def test_run_in_executor_and_shutdown(loop: Any) -> None:
    async def main() -> tuple[int, str]:
        r = await loop.run_in_executor(None, sum, [1, 2, 3])
        name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        await loop.shutdown_default_executor()
        return r, name

    total, name = loop.run_until_complete(main())
    assert total == 6 and name.startswith("asyncio")
    with pytest.raises(RuntimeError, match=r"^Executor shutdown has been called$"):
        loop.run_in_executor(None, print)


def test_set_default_executor_type_check(loop: Any) -> None:
    with pytest.raises(TypeError, match=r"^executor must be ThreadPoolExecutor instance$"):
        loop.set_default_executor(object())


def test_add_reader_and_writer(loop: Any) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got = loop.create_future()
    try:
        def on_readable() -> None:
            got.set_result(a.recv(100))
            loop.remove_reader(a)

        loop.add_reader(a, on_readable)
        writable = loop.create_future()

        def on_writable() -> None:
            loop.remove_writer(b.fileno())
            b.send(b"ping")
            writable.set_result(None)

        loop.add_writer(b.fileno(), on_writable)
        assert loop.run_until_complete(got) == b"ping"
        assert not loop.remove_reader(a)
        assert not loop.remove_writer(b)
    finally:
        a.close()
        b.close()


def test_add_reader_bad_fd(loop: Any) -> None:
    with pytest.raises(ValueError, match=r"^Invalid file object: <object object at 0x[0-9a-f]+>$"):
        loop.add_reader(object(), print)
    with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
        loop.add_reader(-1, print)


def test_async_generators_are_finalized(loop: Any) -> None:
    closed: list[bool] = []

    async def agen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main() -> None:
        g = agen()
        await g.__anext__()  # leave it suspended

        main.g = g  # type: ignore[attr-defined]

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]


def test_no_fd_leak_over_loop_lifecycle(aio: ModuleType) -> None:
    def count() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = count()
    for _ in range(20):
        lp = aio.new_event_loop()
        lp.run_until_complete(aio.sleep(0))
        lp.close()
    assert count() == before


def test_selector_event_loop_takes_a_selector(aio: ModuleType) -> None:
    import selectors
    import socket

    selector = selectors.PollSelector()
    loop = aio.SelectorEventLoop(selector)
    try:
        a, b = socket.socketpair()
        got: list[bytes] = []

        def readable() -> None:
            got.append(a.recv(10))
            loop.stop()

        loop.add_reader(a, readable)
        loop.call_soon(b.send, b"hi")
        loop.run_forever()
        loop.remove_reader(a)
        assert got == [b"hi"]
        assert any(key.fileobj in (a, a.fileno()) for key in selector.get_map().values()) is False
        a.close()
        b.close()
    finally:
        loop.close()


def test_debug_origins_end_at_the_caller(loop: Any) -> None:
    # In debug mode a handle, timer or task records where it was made: the
    # last entry is the line that called the loop, in either build (a
    # compiled loop method pushes no frame of its own to drop).
    loop.set_debug(True)

    async def coro() -> None:
        pass

    made = [
        (loop.call_soon(print), _lineno()),
        (loop.call_soon_threadsafe(print), _lineno()),
        (loop.call_later(10, print), _lineno()),
        (loop.call_at(loop.time() + 10, print), _lineno()),
        (loop.create_task(coro()), _lineno()),
    ]
    for obj, lineno in made:
        last = obj._source_traceback[-1]
        assert (last.name, last.lineno) == ("test_debug_origins_end_at_the_caller", lineno)
        if not hasattr(obj, "_coro"):
            obj.cancel()
    loop.run_until_complete(made[-1][0])


def _lineno() -> int:
    import sys

    return sys._getframe(1).f_lineno


def test_a_freed_loop_clears_its_weak_references(aio: ModuleType) -> None:
    # anyio's RunVar keys its values weakly by loop: a dead loop's entry must
    # go, or the next loop allocated at the same address sees its values.
    import gc
    import weakref

    died: list[bool] = []
    table: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
    lp = aio.new_event_loop()
    table[lp] = 1
    ref = weakref.ref(lp, lambda _: died.append(True))
    lp.close()
    del lp
    gc.collect()
    assert (ref(), died, len(table)) == (None, [True], 0)


def test_call_later_and_call_at_refuse_none_with_asyncios_errors(loop: Any) -> None:
    with pytest.raises(TypeError, match=r"^delay must not be None$"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match=r"^when cannot be None$"):
        loop.call_at(None, print)


def test_io_is_seen_while_every_turn_has_work(loop: Any) -> None:
    # A task spinning on sleep(0) keeps work ready on every turn: readiness
    # must still be polled for. The count is of the task's steps from the one
    # that sent the byte to the callback: asyncio polls in the next turn (2);
    # tidal skips the zero-timeout poll right after a turn that polled, so
    # it may see the byte one turn later (3).
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        spins = 0
        seen = loop.create_future()

        def on_readable() -> None:
            loop.remove_reader(a)
            seen.set_result(spins)

        async def main() -> int:
            nonlocal spins
            loop.add_reader(a, on_readable)
            for _ in range(3):  # a few turns, polled or not, before the byte
                await asyncio.sleep(0)
            b.send(b"x")
            start = spins
            while not seen.done():
                spins += 1
                await asyncio.sleep(0)
            return seen.result() - start

        assert loop.run_until_complete(main()) <= 3
    finally:
        a.close()
        b.close()


def test_a_round_trip_polls_once_per_message() -> None:
    # tidal's own behaviour (README, "Where tidal deliberately differs"): no
    # zero-timeout poll right after a turn that polled, so a request/response
    # exchange makes one epoll_wait per message; asyncio makes two.
    import tidal

    rounds = 50
    loop = tidal.new_event_loop()
    polls = 0
    real_poller = loop._poller

    class CountingPoller:
        # A stand-in, not a patched method: the compiled poller's are read-only.
        def __getattr__(self, name: str) -> Any:
            return getattr(real_poller, name)

        def poll(self, timeout: Any = None) -> Any:
            nonlocal polls
            polls += 1
            return real_poller.poll(timeout)

    async def main() -> None:
        left, right = socket.socketpair()
        reader_a, writer_a = await tidal.open_connection(sock=left)
        reader_b, writer_b = await tidal.open_connection(sock=right)

        async def echo() -> None:
            for _ in range(rounds):
                writer_b.write(await reader_b.readexactly(16))

        echoer = tidal.create_task(echo())
        await tidal.sleep(0)
        nonlocal polls
        loop._poller = CountingPoller()
        polls = 0
        for _ in range(rounds):
            writer_a.write(b"p" * 16)
            await reader_a.readexactly(16)
        loop._poller = real_poller
        await echoer
        writer_a.close()
        writer_b.close()
        await writer_a.wait_closed()
        await writer_b.wait_closed()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert polls <= 2 * rounds + 2, polls

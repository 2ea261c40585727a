"""add_signal_handler / remove_signal_handler, on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import signal
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

USR1 = signal.SIGUSR1
USR2 = signal.SIGUSR2


@pytest.fixture(autouse=True)
def signals_restored() -> Iterator[None]:
    """Every test leaves the signal dispositions and wakeup fd as it found them."""
    saved = {sig: signal.getsignal(sig) for sig in (USR1, USR2, signal.SIGINT)}
    fds = set(os.listdir("/proc/self/fd"))
    yield
    gc.collect()
    for sig, handler in saved.items():
        assert signal.getsignal(sig) == handler, sig
        signal.signal(sig, handler)
    assert signal.set_wakeup_fd(-1) == -1
    assert set(os.listdir("/proc/self/fd")) <= fds


def test_handler_runs_on_the_loop_with_its_args(loop: Any) -> None:
    async def main() -> list[Any]:
        got: list[Any] = []
        done = loop.create_future()

        def handler(*args: Any) -> None:
            got.append(args)
            done.set_result(None)

        loop.add_signal_handler(USR1, handler, "a", 1)
        assert signal.getsignal(USR1) not in (signal.SIG_DFL, signal.SIG_IGN)
        os.kill(os.getpid(), USR1)
        assert got == []  # never run from inside the Python-level signal handler
        await done
        assert loop.remove_signal_handler(USR1) is True
        assert loop.remove_signal_handler(USR1) is False
        assert signal.getsignal(USR1) == signal.SIG_DFL
        return got

    assert loop.run_until_complete(main()) == [("a", 1)]


def test_signal_wakes_a_sleeping_loop(loop: Any) -> None:
    async def main() -> str:
        done = loop.create_future()
        loop.add_signal_handler(USR1, done.set_result, "woken")
        # The loop is blocked in the poller when the signal arrives.
        timer = threading.Timer(0.02, os.kill, (os.getpid(), USR1))
        timer.start()
        try:
            return str(await asyncio.wait_for(done, 2))
        finally:
            timer.join()

    assert loop.run_until_complete(main()) == "woken"


def test_two_signals_and_replacement(loop: Any) -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        loop.add_signal_handler(USR1, seen.append, "old")
        loop.add_signal_handler(USR1, seen.append, "usr1")
        loop.add_signal_handler(USR2, seen.append, "usr2")
        os.kill(os.getpid(), USR1)
        os.kill(os.getpid(), USR2)
        while len(seen) < 2:
            await asyncio.sleep(0.001)
        loop.remove_signal_handler(USR2)
        assert signal.getsignal(USR2) == signal.SIG_DFL
        os.kill(os.getpid(), USR1)
        while len(seen) < 3:
            await asyncio.sleep(0.001)
        return sorted(seen)

    assert loop.run_until_complete(main()) == ["usr1", "usr1", "usr2"]


def test_handler_runs_in_the_context_of_add(loop: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> str:
        done = loop.create_future()
        var.set("at add")
        loop.add_signal_handler(USR1, lambda: done.set_result(var.get()))
        var.set("later")
        os.kill(os.getpid(), USR1)
        return str(await done)

    assert loop.run_until_complete(main()) == "at add"


def test_handler_error_goes_to_the_exception_handler(loop: Any) -> None:
    errors: list[dict[str, Any]] = []

    def boom() -> None:
        raise ZeroDivisionError

    async def main() -> None:
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        loop.add_signal_handler(USR1, boom)
        os.kill(os.getpid(), USR1)
        while not errors:
            await asyncio.sleep(0.001)

    loop.run_until_complete(main())
    assert errors[0]["message"].startswith("Exception in callback ")
    assert isinstance(errors[0]["exception"], ZeroDivisionError)


def test_close_removes_handlers(aio: ModuleType) -> None:
    loop = aio.new_event_loop()
    loop.add_signal_handler(USR1, print)
    loop.add_signal_handler(signal.SIGINT, print)
    loop.close()
    assert signal.getsignal(USR1) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_coroutines_are_rejected(loop: Any) -> None:
    async def coro() -> None:
        pass

    msg = r"^coroutines cannot be used with add_signal_handler\(\)$"
    with pytest.raises(TypeError, match=msg):
        loop.add_signal_handler(USR1, coro)
    c = coro()
    with pytest.raises(TypeError, match=msg):
        loop.add_signal_handler(USR1, c)
    c.close()
    assert signal.getsignal(USR1) == signal.SIG_DFL


@pytest.mark.parametrize("bad", [0, -1, 1000, 65])
def test_invalid_signal_numbers(loop: Any, bad: int) -> None:
    with pytest.raises(ValueError, match=f"^invalid signal number {bad}$"):
        loop.add_signal_handler(bad, print)
    with pytest.raises(ValueError, match=f"^invalid signal number {bad}$"):
        loop.remove_signal_handler(bad)


def test_non_int_signal(loop: Any) -> None:
    with pytest.raises(TypeError, match=r"^sig must be an int, not '10'$"):
        loop.add_signal_handler("10", print)
    with pytest.raises(TypeError, match=r"^sig must be an int, not 1\.5$"):
        loop.remove_signal_handler(1.5)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signals(loop: Any, sig: int) -> None:
    with pytest.raises(RuntimeError, match=f"^sig {int(sig)} cannot be caught$"):
        loop.add_signal_handler(sig, print)
    assert loop.remove_signal_handler(sig) is False


def test_uncatchable_signal_keeps_other_handlers(loop: Any) -> None:
    async def main() -> None:
        done = loop.create_future()
        loop.add_signal_handler(USR1, done.set_result, 1)
        with pytest.raises(RuntimeError):
            loop.add_signal_handler(signal.SIGKILL, print)
        os.kill(os.getpid(), USR1)
        await asyncio.wait_for(done, 2)

    loop.run_until_complete(main())


def test_closed_loop(aio: ModuleType) -> None:
    loop = aio.new_event_loop()
    loop.close()
    with pytest.raises(ValueError, match=r"^invalid signal number 0$"):
        loop.add_signal_handler(0, print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.add_signal_handler(USR1, print)
    assert loop.remove_signal_handler(USR1) is False


def test_not_in_main_thread(loop: Any) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.add_signal_handler(USR1, print)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert len(errors) == 1
    assert type(errors[0]) is RuntimeError
    assert str(errors[0]) == "set_wakeup_fd only works in main thread of the main interpreter"
    assert signal.getsignal(USR1) == signal.SIG_DFL


def test_wakeup_fd_watched_only_while_handlers_exist(is_tidal: bool, loop: Any) -> None:
    if not is_tidal:
        pytest.skip("tidal internals")
    assert loop._signal_rfd == -1
    loop.add_signal_handler(USR1, print)
    rfd = loop._signal_rfd
    assert rfd in loop._fds
    assert signal.set_wakeup_fd(loop._signal_wfd) == loop._signal_wfd
    loop.add_signal_handler(USR2, print)
    loop.remove_signal_handler(USR1)
    assert rfd in loop._fds
    loop.remove_signal_handler(USR2)
    assert rfd not in loop._fds
    assert signal.set_wakeup_fd(-1) == -1
    loop.add_signal_handler(USR2, print)
    assert loop._signal_rfd == rfd
    assert rfd in loop._fds
    loop.close()
    assert loop._signal_rfd == -1

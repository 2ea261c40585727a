"""loop.subprocess_exec / subprocess_shell with a SubprocessProtocol, on tidal and asyncio."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import tidal
import tidal._io.subprocess as tidal_subprocess


class Recorder(asyncio.SubprocessProtocol):
    """Records the protocol events; ``done`` resolves at connection_lost."""

    def __init__(self, loop: Any) -> None:
        self.events: list[Any] = []
        self.out: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.transport: Any = None
        self.exited = loop.create_future()
        self.done = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.out[fd] += data

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self.events.append(("pipe_lost", fd, type(exc).__name__ if exc else None))

    def process_exited(self) -> None:
        self.events.append("exited")
        self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))
        self.done.set_result(None)

    def check_order(self, fds: tuple[int, ...] = (0, 1, 2)) -> None:
        """made first, connection_lost last, each pipe closed once, one exit."""
        assert self.events[0] == "made"
        assert self.events[-1] == ("lost", None)
        middle = self.events[1:-1]
        assert middle.count("exited") == 1
        lost = sorted(e[1] for e in middle if e != "exited")
        assert lost == sorted(fds)


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    before = set(os.listdir("/proc/self/fd"))
    yield
    # The loop fixture, torn down first, has closed the loop and run gc.collect().
    leaked = set(os.listdir("/proc/self/fd")) - before
    assert not leaked, leaked


def test_echo_through_cat(loop: Any) -> None:
    async def main() -> Recorder:
        tr, proto = await loop.subprocess_exec(lambda: Recorder(loop), "cat")
        assert proto.events == ["made"]
        assert isinstance(tr.get_pid(), int)
        assert tr.get_returncode() is None
        assert isinstance(tr.get_extra_info("subprocess"), subprocess.Popen)
        stdin = tr.get_pipe_transport(0)
        stdin.write(b"hello ")
        stdin.write(b"cat\n")
        stdin.close()
        await proto.done
        assert tr.get_returncode() == 0
        assert tr.get_extra_info("subprocess").returncode == 0
        assert await tr._wait() == 0
        tr.close()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.out == {1: b"hello cat\n", 2: b""}
    proto.check_order()


def test_large_input_and_output(loop: Any) -> None:
    payload = os.urandom(1 << 20)

    async def main() -> bytes:
        tr, proto = await loop.subprocess_exec(lambda: Recorder(loop), "cat", stderr=None)
        tr.get_pipe_transport(0).write(payload)
        tr.get_pipe_transport(0).write_eof()
        await proto.done
        tr.close()
        proto.check_order((0, 1))
        return bytes(proto.out[1])

    assert loop.run_until_complete(main()) == payload


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_codes(loop: Any, code: int) -> None:
    async def main() -> int:
        tr, proto = await loop.subprocess_shell(lambda: Recorder(loop), f"exit {code}")
        returncode = await proto.exited
        await proto.done
        tr.close()
        proto.check_order()
        assert tr.get_returncode() == returncode
        return int(returncode)

    assert loop.run_until_complete(main()) == code


@pytest.mark.parametrize(
    ("method", "expected"),
    [("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM), ("usr1", -signal.SIGUSR1)],
)
def test_signals_to_child(loop: Any, method: str, expected: int) -> None:
    async def main() -> int:
        tr, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "sleep", "30", stdin=None, stdout=None, stderr=None
        )
        if method == "usr1":
            tr.send_signal(signal.SIGUSR1)
        else:
            getattr(tr, method)()
        rc = await tr._wait()
        await proto.done
        assert proto.events == ["made", "exited", ("lost", None)]
        # Once the transport is finished there is no process to signal.
        with pytest.raises(ProcessLookupError):
            tr.kill()
        tr.close()
        return int(rc)

    assert loop.run_until_complete(main()) == expected


async def exited_but_unfinished(loop: Any) -> tuple[Any, Recorder, int]:
    """A child that has exited while a grandchild still holds its stdout open.

    The transport is then not finished: the exit is known, the pipe is not
    closed.  Returns the transport, the protocol and the grandchild's pid.
    """
    tr, proto = await loop.subprocess_shell(
        lambda: Recorder(loop), "sleep 5 & echo $!", stdin=None, stderr=None
    )
    await proto.exited
    while not proto.out[1].endswith(b"\n"):
        await asyncio.sleep(0.001)
    return tr, proto, int(proto.out[1])


def test_signal_after_exit_is_ignored(loop: Any) -> None:
    async def main() -> tuple[int | None, list[Any]]:
        tr, proto, holder = await exited_but_unfinished(loop)
        tr.kill()  # exited, but the transport is not finished yet: no error
        tr.terminate()
        tr.send_signal(signal.SIGINT)
        os.kill(holder, signal.SIGKILL)
        await proto.done
        tr.close()
        return tr.get_returncode(), proto.events

    returncode, events = loop.run_until_complete(main())
    assert returncode == 0  # the shell's own exit: the signals reached nothing
    assert events == ["made", "exited", ("pipe_lost", 1, None), ("lost", None)]


def test_stderr_to_stdout(loop: Any) -> None:
    async def main() -> Recorder:
        tr, proto = await loop.subprocess_shell(
            lambda: Recorder(loop), "echo out; echo err >&2", stdin=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        assert tr.get_pipe_transport(0) is None
        assert tr.get_pipe_transport(2) is None
        assert tr.get_pipe_transport(1) is not None
        await proto.done
        tr.close()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.out[1] == b"out\nerr\n"
    proto.check_order((1,))


def test_devnull_and_inherited_streams(loop: Any) -> None:
    async def main() -> Recorder:
        tr, proto = await loop.subprocess_shell(
            lambda: Recorder(loop), "echo hidden; echo shown >&2",
            stdin=None, stdout=subprocess.DEVNULL,
        )
        assert tr.get_pipe_transport(0) is None
        assert tr.get_pipe_transport(1) is None
        await proto.done
        tr.close()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.out == {1: b"", 2: b"shown\n"}
    proto.check_order((2,))


def test_no_pipes_at_all(loop: Any) -> None:
    async def main() -> Recorder:
        tr, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "true", stdin=None, stdout=None, stderr=None
        )
        assert await tr._wait() == 0
        await proto.done
        tr.close()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.events == ["made", "exited", ("lost", None)]


def test_wait_on_exited_child(loop: Any) -> None:
    async def main() -> None:
        tr, proto = await loop.subprocess_shell(lambda: Recorder(loop), "exit 4")
        await proto.done
        assert await tr._wait() == 4
        assert await tr._wait() == 4
        waiters = [loop.create_task(tr._wait()) for _ in range(3)]
        assert await asyncio.gather(*waiters) == [4, 4, 4]
        tr.close()

    loop.run_until_complete(main())


def test_close_kills_a_running_child(loop: Any) -> None:
    async def main() -> Recorder:
        tr, proto = await loop.subprocess_exec(lambda: Recorder(loop), "sleep", "30")
        tr.close()
        assert tr.is_closing()
        tr.close()
        await proto.done
        assert tr.get_returncode() == -signal.SIGKILL
        return proto

    loop.run_until_complete(main()).check_order()


def test_close_after_exit_does_not_kill(loop: Any) -> None:
    async def main() -> int:
        tr, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "true", stdin=None, stdout=None, stderr=None
        )
        await proto.exited
        tr.close()
        await proto.done
        return int(tr.get_returncode())

    assert loop.run_until_complete(main()) == 0


def test_many_concurrent_children(loop: Any) -> None:
    async def one(i: int) -> tuple[int, bytes]:
        tr, proto = await loop.subprocess_shell(lambda: Recorder(loop), f"echo {i}; exit {i % 3}")
        await proto.done
        tr.close()
        return tr.get_returncode(), bytes(proto.out[1])

    async def main() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(one(i) for i in range(40))))

    results = loop.run_until_complete(main())
    assert results == [(i % 3, f"{i}\n".encode()) for i in range(40)]


def test_missing_program(loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            await loop.subprocess_exec(lambda: Recorder(loop), "/nonexistent/program")

    loop.run_until_complete(main())


def test_cancelled_while_starting_kills_the_child(loop: Any) -> None:
    async def main() -> None:
        protos: list[Recorder] = []

        def factory() -> Recorder:
            protos.append(Recorder(loop))
            return protos[-1]

        task = loop.create_task(loop.subprocess_exec(factory, "sleep", "30"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        tr = protos[0].transport
        assert tr is not None and tr.is_closing()
        assert tr.get_returncode() == -signal.SIGKILL

    loop.run_until_complete(main())


_ARG_ERRORS = [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
    ({"universal_newlines": True, "bufsize": 1}, "universal_newlines must be False"),
    ({"bufsize": 1, "text": True, "encoding": "x"}, "bufsize must be 0"),
]


@pytest.mark.parametrize(("kwargs", "message"), _ARG_ERRORS)
def test_argument_checks(loop: Any, kwargs: dict[str, Any], message: str) -> None:
    made: list[int] = []

    def factory() -> Recorder:
        made.append(1)
        return Recorder(loop)

    async def main() -> None:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            await loop.subprocess_exec(factory, "true", **kwargs)
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            await loop.subprocess_shell(factory, "true", **kwargs)

    loop.run_until_complete(main())
    assert made == []


def test_shell_argument_checks(loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^shell must be False$"):
            await loop.subprocess_exec(lambda: Recorder(loop), "true", shell=True)
        with pytest.raises(ValueError, match=r"^shell must be True$"):
            await loop.subprocess_shell(lambda: Recorder(loop), "true", shell=False)
        with pytest.raises(ValueError, match=r"^cmd must be a string$"):
            await loop.subprocess_shell(lambda: Recorder(loop), ["true"])
        with pytest.raises(ValueError, match=r"^cmd must be a string$"):
            await loop.subprocess_shell(lambda: Recorder(loop), ["true"], shell=False)

    loop.run_until_complete(main())


def test_bytes_command_and_popen_kwargs(loop: Any, tmp_path: Any) -> None:
    async def main() -> Recorder:
        tr, proto = await loop.subprocess_shell(
            lambda: Recorder(loop), b"pwd; echo $TIDAL_T", cwd=str(tmp_path),
            env={"TIDAL_T": "env-ok", "PATH": os.environ["PATH"]},
        )
        await proto.done
        tr.close()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.out[1] == f"{os.path.realpath(tmp_path)}\nenv-ok\n".encode()


def test_repr(loop: Any) -> None:
    def shape(text: str) -> str:
        return re.sub(r"fd=\d+", "fd=N", re.sub(r"pid=\d+", "pid=P", text))

    async def main() -> None:
        tr, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "cat", stderr=subprocess.STDOUT
        )
        assert shape(repr(tr)) == (
            "<_UnixSubprocessTransport pid=P running "
            "stdin=<_UnixWritePipeTransport fd=N idle bufsize=0> "
            "stdout=<_UnixReadPipeTransport fd=N polling>>"
        )
        tr.get_pipe_transport(0).close()
        await proto.done
        assert shape(repr(tr)) == (
            "<_UnixSubprocessTransport pid=P returncode=0 "
            "stdin=<_UnixWritePipeTransport closed fd=N closed> "
            "stdout=<_UnixReadPipeTransport closed fd=N closed>>"
        )
        tr.close()
        assert shape(repr(tr)).startswith("<_UnixSubprocessTransport closed pid=P returncode=0 ")

    loop.run_until_complete(main())


def test_protocol_errors_are_logged_not_lost(loop: Any) -> None:
    errors: list[dict[str, Any]] = []

    class Failing(Recorder):
        def pipe_data_received(self, fd: int, data: bytes) -> None:
            raise ZeroDivisionError

    async def main() -> None:
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        tr, proto = await loop.subprocess_shell(lambda: Failing(loop), "echo x")
        await proto.done
        tr.close()

    loop.run_until_complete(main())
    assert len(errors) == 1
    assert isinstance(errors[0]["exception"], ZeroDivisionError)


def test_unclosed_transport_warns(loop: Any) -> None:
    async def main() -> Any:
        tr, proto = await loop.subprocess_exec(lambda: Recorder(loop), "true")
        await proto.done
        return tr

    tr = loop.run_until_complete(main())
    unclosed = "^" + re.escape(f"unclosed transport {tr!r}") + "$"
    with pytest.warns(ResourceWarning, match=unclosed):
        del tr
        gc.collect()


# -- tidal's exit watching ------------------------------------------------------------


@pytest.fixture(params=["pidfd", "thread", "thread-waitpid"])
def watcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """tidal with each way of noticing exits."""
    if request.param.startswith("thread"):
        monkeypatch.setattr(tidal_subprocess, "_pidfd_works", False)
        if request.param == "thread-waitpid":
            monkeypatch.setattr(tidal_subprocess, "_CAN_WAIT_WITHOUT_REAPING", False)
    elif not tidal_subprocess._can_use_pidfd():
        pytest.skip("no pidfd here")
    return str(request.param)


def test_tidal_exit_watchers(watcher: str) -> None:
    loop = tidal.new_event_loop()

    async def one(cmd: str) -> tuple[int, bytes]:
        tr, proto = await loop.subprocess_shell(lambda: Recorder(loop), cmd)
        await proto.done
        tr.close()
        assert tr._reaped
        return tr.get_returncode(), bytes(proto.out[1])

    async def main() -> list[tuple[int, bytes]]:
        assert not loop._child_pidfds
        results = list(await asyncio.gather(one("echo a; exit 3"), one("kill -9 $$")))
        assert not loop._child_pidfds
        return results

    try:
        assert loop.run_until_complete(main()) == [(3, b"a\n"), (-9, b"")]
    finally:
        loop.close()


def test_tidal_close_loop_with_running_child(watcher: str) -> None:
    loop = tidal.new_event_loop()

    async def main() -> Any:
        tr, _ = await loop.subprocess_exec(
            lambda: Recorder(loop), "sleep", "30", stdin=None, stdout=None, stderr=None
        )
        return tr

    tr = loop.run_until_complete(main())
    if watcher == "pidfd":
        assert len(loop._child_pidfds) == 1
    loop.close()
    assert not loop._child_pidfds
    proc = tr.get_extra_info("subprocess")
    tr.close()  # kills the child: nothing will report its exit now
    proc.wait()


def test_tidal_child_reaped_elsewhere(caplog: pytest.LogCaptureFixture) -> None:
    loop = tidal.new_event_loop()

    async def main() -> int:
        tr, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "sleep", "30", stdin=None, stdout=None, stderr=None
        )
        # Someone else's waitpid() steals the status, as a SIGCHLD handler might.
        os.kill(tr.get_pid(), signal.SIGKILL)
        os.waitpid(tr.get_pid(), 0)
        await proto.done
        tr.close()
        return int(tr.get_returncode())

    try:
        assert loop.run_until_complete(main()) == 255
    finally:
        loop.close()
    # The messages of asyncio's default watcher: a thread on 3.11, a pidfd after.
    if sys.version_info < (3, 12):
        assert "Unknown child process pid" in caplog.text
    else:
        assert "exit status already read:  will report returncode 255" in caplog.text


def test_tidal_send_signal_never_hits_a_reaped_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = tidal.new_event_loop()
    killed: list[Any] = []

    async def main() -> None:
        tr, proto, holder = await exited_but_unfinished(loop)
        assert tr._reaped
        monkeypatch.setattr(os, "kill", lambda *a: killed.append(a))
        tr.send_signal(signal.SIGTERM)
        tr.close()
        monkeypatch.undo()
        os.kill(holder, signal.SIGKILL)
        await proto.done

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert killed == []


def test_tidal_popen_reaping_first_keeps_the_status(watcher: str) -> None:
    # asyncio reports 255 here (its watcher finds the status gone); tidal
    # takes it from Popen, which has it.
    if watcher == "thread-waitpid":
        pytest.skip("a thread blocked in waitpid() reaps first: Popen reads ECHILD")
    loop = tidal.new_event_loop()

    async def main() -> tuple[Any, Any]:
        tr, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "sleep", "30", stdin=None, stdout=None, stderr=None
        )
        proc = tr.get_extra_info("subprocess")
        proc.kill()
        proc.wait()
        tr.close()  # Popen knows it exited: no second kill
        await proto.done
        return tr.get_returncode(), proc.returncode

    try:
        assert loop.run_until_complete(main()) == (-9, -9)
    finally:
        loop.close()


def test_tidal_failed_pipe_connection_does_not_hang() -> None:
    # asyncio hangs in this case: its transport waits for a pipe that was
    # never connected, with the protocol's events held back forever.
    loop = tidal.new_event_loop()
    real = loop.connect_read_pipe

    async def failing_connect(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise ZeroDivisionError

    loop.connect_read_pipe = failing_connect  # type: ignore[method-assign]
    protos: list[Recorder] = []

    def factory() -> Recorder:
        protos.append(Recorder(loop))
        return protos[-1]

    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            await asyncio.wait_for(loop.subprocess_exec(factory, "sleep", "30"), 5)

    try:
        loop.run_until_complete(main())
        loop.run_until_complete(asyncio.sleep(0.01))
        assert protos[0].events == []  # the protocol was never connected
        assert not loop._child_pidfds
    finally:
        loop.close()

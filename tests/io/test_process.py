"""create_subprocess_exec/shell and Process, on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from subprocess import DEVNULL, PIPE, STDOUT
from types import ModuleType
from typing import Any

import pytest

import tidal
import tidal._io.process as process_mod
import tidal.subprocess as tidal_subprocess


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    before = set(os.listdir("/proc/self/fd"))
    yield
    # The loop fixture, torn down first, has closed the loop and run gc.collect().
    leaked = set(os.listdir("/proc/self/fd")) - before
    assert not leaked, leaked


def test_public_names() -> None:
    assert tidal.create_subprocess_exec is process_mod.create_subprocess_exec
    assert tidal.create_subprocess_shell is process_mod.create_subprocess_shell
    assert (process_mod.PIPE, process_mod.STDOUT, process_mod.DEVNULL) == (PIPE, STDOUT, DEVNULL)
    assert set(process_mod.__all__) == set(asyncio.subprocess.__all__)
    for name in ("PIPE", "STDOUT", "DEVNULL", "Process", "SubprocessStreamProtocol",
                 "create_subprocess_exec", "create_subprocess_shell"):
        assert hasattr(tidal_subprocess, name), name
    assert tidal_subprocess.__all__ == asyncio.subprocess.__all__


def test_communicate_echo(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, Any, int]:
        proc = await aio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        assert proc.stderr is None
        assert proc.returncode is None
        assert re.fullmatch(r"<Process \d+>", repr(proc))
        assert proc.pid == int(repr(proc)[9:-1])
        out, err = await proc.communicate(b"hello\n")
        return out, err, proc.returncode

    assert loop.run_until_complete(main()) == (b"hello\n", None, 0)


def test_communicate_large_input(aio: ModuleType, loop: Any) -> None:
    payload = os.urandom(1 << 20)

    async def main() -> tuple[Any, Any]:
        proc = await aio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE, stderr=PIPE)
        result: tuple[Any, Any] = await proc.communicate(payload)
        return result

    assert loop.run_until_complete(main()) == (payload, b"")


def test_communicate_feeds_stdin_while_reading(aio: ModuleType, loop: Any) -> None:
    # The child fills its stdout pipe before reading any input: only
    # concurrent feeding and reading can finish.
    script = "head -c 400000 /dev/zero; wc -c; head -c 300000 /dev/zero >&2"

    async def main() -> tuple[Any, Any]:
        proc = await aio.create_subprocess_shell(script, stdin=PIPE, stdout=PIPE, stderr=PIPE)
        result: tuple[Any, Any] = await asyncio.wait_for(proc.communicate(b"x" * 300_000), 20)
        return result

    out, err = loop.run_until_complete(main())
    assert out[:400_000] == bytes(400_000)
    assert out[400_000:].strip() == b"300000"
    assert err == bytes(300_000)


def test_stderr_to_stdout(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, Any]:
        proc = await aio.create_subprocess_shell(
            "echo out; echo err >&2", stdout=PIPE, stderr=STDOUT
        )
        assert proc.stderr is None
        result: tuple[Any, Any] = await proc.communicate()
        return result

    assert loop.run_until_complete(main()) == (b"out\nerr\n", None)


def test_devnull(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, Any, int]:
        proc = await aio.create_subprocess_shell(
            "cat; echo done >&2", stdin=DEVNULL, stdout=DEVNULL, stderr=PIPE
        )
        assert proc.stdin is None and proc.stdout is None
        out, err = await proc.communicate()
        return out, err, proc.returncode

    assert loop.run_until_complete(main()) == (None, b"done\n", 0)


def test_no_pipes(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, int]:
        proc = await aio.create_subprocess_exec("true")
        assert (proc.stdin, proc.stdout, proc.stderr) == (None, None, None)
        return await proc.communicate(), proc.returncode

    assert loop.run_until_complete(main()) == ((None, None), 0)


@pytest.mark.parametrize("code", [0, 3, 127])
def test_exit_codes(aio: ModuleType, loop: Any, code: int) -> None:
    async def main() -> tuple[int, int]:
        proc = await aio.create_subprocess_shell(f"exit {code}")
        rc = await proc.wait()
        return rc, proc.returncode

    assert loop.run_until_complete(main()) == (code, code)


@pytest.mark.parametrize(
    ("how", "expected"),
    [("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM), ("hup", -signal.SIGHUP)],
)
def test_killed_child(aio: ModuleType, loop: Any, how: str, expected: int) -> None:
    # The child restores the default dispositions first: a run started under
    # nohup (or any parent ignoring SIGHUP) passes the ignore on through exec.
    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )

    async def main() -> int:
        proc = await aio.create_subprocess_exec(sys.executable, "-c", child, stdout=PIPE)
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        if how == "hup":
            proc.send_signal(signal.SIGHUP)
        else:
            getattr(proc, how)()
        rc = await proc.wait()
        assert proc.returncode == rc
        # The process is gone and the transport finished: nothing to signal.
        with pytest.raises(ProcessLookupError):
            proc.kill()
        return int(rc)

    assert loop.run_until_complete(main()) == expected


def test_wait_on_already_exited_child(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[int]:
        proc = await aio.create_subprocess_shell("exit 5", stdout=PIPE)
        assert await proc.stdout.read() == b""
        first = await proc.wait()
        waits = await asyncio.gather(proc.wait(), proc.wait())
        return [first, *waits, await proc.wait()]

    assert loop.run_until_complete(main()) == [5, 5, 5, 5]


def test_wait_before_reading_output(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[int, bytes]:
        proc = await aio.create_subprocess_shell("echo buffered", stdout=PIPE)
        rc = await proc.wait()
        return rc, await proc.stdout.read()

    assert loop.run_until_complete(main()) == (0, b"buffered\n")


def test_interactive_lines_through_cat(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[bytes]:
        proc = await aio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        got = []
        for i in range(5):
            proc.stdin.write(f"line {i}\n".encode())
            await proc.stdin.drain()
            got.append(await proc.stdout.readline())
        proc.stdin.close()
        await proc.stdin.wait_closed()
        assert await proc.stdout.read() == b""
        assert await proc.wait() == 0
        return got

    assert loop.run_until_complete(main()) == [f"line {i}\n".encode() for i in range(5)]


def test_async_iteration_over_stdout(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[bytes]:
        proc = await aio.create_subprocess_shell("printf 'a\\nbb\\nccc'", stdout=PIPE)
        lines = [line async for line in proc.stdout]
        await proc.wait()
        return lines

    assert loop.run_until_complete(main()) == [b"a\n", b"bb\n", b"ccc"]


def test_stream_limit(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        proc = await aio.create_subprocess_shell("head -c 100 /dev/zero", stdout=PIPE, limit=10)
        with pytest.raises(
            ValueError,
            match=r"^Separator is not found, and chunk exceed the limit$",
        ):
            await proc.stdout.readline()
        await proc.wait()

    loop.run_until_complete(main())


def test_input_ignored_by_child(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, int]:
        proc = await aio.create_subprocess_shell("exit 0", stdin=PIPE, stdout=PIPE)
        # BrokenPipeError/ConnectionResetError on stdin are not errors here.
        out = await proc.communicate(b"z" * (1 << 20))
        return out, proc.returncode

    assert loop.run_until_complete(main()) == ((b"", None), 0)


def test_child_closing_its_stdin(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, Any]:
        proc = await aio.create_subprocess_shell(
            "exec 0<&-; echo hi", stdin=PIPE, stdout=PIPE
        )
        result: tuple[Any, Any] = await proc.communicate(b"unread")
        return result

    assert loop.run_until_complete(main()) == (b"hi\n", None)


def test_writing_to_a_dead_child(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        proc = await aio.create_subprocess_shell("exit 0", stdin=PIPE)
        await proc.wait()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):
                proc.stdin.write(b"x" * 100_000)
                await proc.stdin.drain()

    loop.run_until_complete(main())


def test_many_concurrent_children(aio: ModuleType, loop: Any) -> None:
    async def one(i: int) -> tuple[bytes, int]:
        proc = await aio.create_subprocess_shell(f"echo {i}; exit {i % 4}", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    async def main() -> list[tuple[bytes, int]]:
        return list(await asyncio.gather(*(one(i) for i in range(50))))

    assert loop.run_until_complete(main()) == [(f"{i}\n".encode(), i % 4) for i in range(50)]


def test_missing_program(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            await aio.create_subprocess_exec("/nonexistent/program", stdout=PIPE)

    loop.run_until_complete(main())


def test_argument_errors(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^text must be False$"):
            await aio.create_subprocess_exec("true", text=True)
        with pytest.raises(ValueError, match=r"^cmd must be a string$"):
            await aio.create_subprocess_shell(["true"])
        with pytest.raises(ValueError, match=r"^bufsize must be 0$"):
            await aio.create_subprocess_shell("true", bufsize=-1)

    loop.run_until_complete(main())


def test_cancelled_communicate_leaves_a_killable_child(aio: ModuleType, loop: Any) -> None:
    async def main() -> int:
        proc = await aio.create_subprocess_exec("sleep", "30", stdout=PIPE, stderr=PIPE)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proc.communicate(), 0.02)
        proc.kill()
        return int(await proc.wait())

    assert loop.run_until_complete(main()) == -signal.SIGKILL


def test_python_child_with_env_and_cwd(aio: ModuleType, loop: Any, tmp_path: Any) -> None:
    async def main() -> tuple[Any, Any]:
        proc = await aio.create_subprocess_exec(
            sys.executable, "-c", "import os, sys; print(os.getcwd(), os.environ['TIDAL_X'])",
            stdout=PIPE, cwd=str(tmp_path), env={"TIDAL_X": "42"},
        )
        result: tuple[Any, Any] = await proc.communicate()
        return result

    out, err = loop.run_until_complete(main())
    assert out == f"{os.path.realpath(tmp_path)} 42\n".encode()
    assert err is None


# -- asyncio's own create_subprocess_* on tidal's loop ---------------------------


def test_asyncio_subprocess_api_on_tidal_loop(
    dropin: Callable[[Coroutine[Any, Any, Any]], Any],
) -> None:
    async def main() -> tuple[Any, ...]:
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate(b"drop-in\n")
        shell = await asyncio.create_subprocess_shell("exit 9")
        return out, proc.returncode, await shell.wait()

    assert dropin(main()) == (b"drop-in\n", 0, 9)


def test_communicate_without_input_and_stdin_pipe(aio: ModuleType, loop: Any) -> None:
    # 3.12.1+ closes stdin even without input, so cat ends; 3.11 leaves it open.
    closes_stdin = sys.version_info >= (3, 12, 1)

    async def main() -> Any:
        proc = await aio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        try:
            return await asyncio.wait_for(proc.communicate(), 0.5 if closes_stdin else 0.05)
        except TimeoutError:
            assert not proc.stdin.is_closing()
            proc.kill()
            await proc.wait()
            return "timeout"

    expected = (b"", None) if closes_stdin else "timeout"
    assert loop.run_until_complete(main()) == expected


def test_loop_in_another_thread(aio: ModuleType) -> None:
    # No SIGCHLD handler is needed, so a loop outside the main thread works.
    import concurrent.futures

    async def main() -> tuple[Any, int]:
        proc = await aio.create_subprocess_shell("echo thread; exit 2", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(aio.run, main()).result(timeout=20) == (b"thread\n", 2)

"""High-level subprocesses: create_subprocess_exec/shell and Process with streams.

``Process.stdin`` is a StreamWriter over the child's stdin pipe,
``stdout``/``stderr`` are StreamReaders fed by the subprocess transport.
``communicate()`` feeds stdin and reads both outputs concurrently, so a
child that fills one pipe while we write the other cannot deadlock.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from asyncio import SubprocessProtocol
from typing import Any

from tidal._api.gather import gather
from tidal._core.events import get_running_loop
from tidal._io.stream_reader import _DEFAULT_LIMIT, StreamReader
from tidal._io.streams import FlowControlMixin, StreamWriter

__all__: tuple[str, ...] = ("create_subprocess_exec", "create_subprocess_shell")

logger = logging.getLogger("asyncio")

PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL

# From 3.12.1, communicate() closes stdin even without input; 3.11 only feeds
# (and closes) stdin when there is input.
_CLOSE_STDIN_WITHOUT_INPUT = sys.version_info >= (3, 12, 1)


class SubprocessStreamProtocol(FlowControlMixin, SubprocessProtocol):
    """Like StreamReaderProtocol, but for a subprocess."""

    def __init__(self, limit: int, loop: Any) -> None:
        super().__init__(loop=loop)
        self._limit = limit
        self.stdin: StreamWriter | None = None
        self.stdout: StreamReader | None = None
        self.stderr: StreamReader | None = None
        self._transport: Any = None
        self._process_exited = False
        self._pipe_fds: list[int] = []
        self._stdin_closed = self._loop.create_future()

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self.stdin is not None:
            info.append(f"stdin={self.stdin!r}")
        if self.stdout is not None:
            info.append(f"stdout={self.stdout!r}")
        if self.stderr is not None:
            info.append(f"stderr={self.stderr!r}")
        return "<{}>".format(" ".join(info))

    def connection_made(self, transport: Any) -> None:
        """Make the streams for the piped fds."""
        self._transport = transport
        stdout_transport = transport.get_pipe_transport(1)
        if stdout_transport is not None:
            self.stdout = StreamReader(limit=self._limit, loop=self._loop)
            self.stdout.set_transport(stdout_transport)
            self._pipe_fds.append(1)
        stderr_transport = transport.get_pipe_transport(2)
        if stderr_transport is not None:
            self.stderr = StreamReader(limit=self._limit, loop=self._loop)
            self.stderr.set_transport(stderr_transport)
            self._pipe_fds.append(2)
        stdin_transport = transport.get_pipe_transport(0)
        if stdin_transport is not None:
            self.stdin = StreamWriter(stdin_transport, protocol=self, reader=None, loop=self._loop)

    def pipe_data_received(self, fd: int, data: bytes) -> None:  # type: ignore[override]
        """Feed the output stream of *fd*."""
        if fd == 1:
            reader = self.stdout
        elif fd == 2:
            reader = self.stderr
        else:
            reader = None
        if reader is not None:
            reader.feed_data(data)

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        """End the stream of *fd*; the transport closes once all are done."""
        if fd == 0:
            pipe = self.stdin
            if pipe is not None:
                pipe.close()
            self.connection_lost(exc)
            if exc is None:
                self._stdin_closed.set_result(None)
            else:
                self._stdin_closed.set_exception(exc)
                # Awaiting wait_closed() is optional: an unseen error is no leak.
                self._stdin_closed._log_traceback = False
            return
        if fd == 1:
            reader = self.stdout
        elif fd == 2:
            reader = self.stderr
        else:
            reader = None
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        if fd in self._pipe_fds:
            self._pipe_fds.remove(fd)
        self._maybe_close_transport()

    def process_exited(self) -> None:
        """The child exited; close the transport once its pipes are done too."""
        self._process_exited = True
        self._maybe_close_transport()

    def _maybe_close_transport(self) -> None:
        if len(self._pipe_fds) == 0 and self._process_exited:
            self._transport.close()
            self._transport = None

    def _get_close_waiter(self, stream: Any) -> Any:
        if stream is self.stdin:
            return self._stdin_closed
        return None


class Process:
    """A child process started by create_subprocess_exec() or create_subprocess_shell()."""

    __slots__ = ("_transport", "_protocol", "_loop", "stdin", "stdout", "stderr", "pid",
                 "__weakref__", "__dict__")  # __dict__: instances take patched methods

    def __init__(self, transport: Any, protocol: SubprocessStreamProtocol, loop: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = loop
        #: A StreamWriter on the child's stdin, or None if it is not piped.
        self.stdin: StreamWriter | None = protocol.stdin
        #: A StreamReader on the child's stdout, or None if it is not piped.
        self.stdout: StreamReader | None = protocol.stdout
        #: A StreamReader on the child's stderr, or None if it is not piped.
        self.stderr: StreamReader | None = protocol.stderr
        #: The child's process id.
        self.pid: int = transport.get_pid()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.pid}>"

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal); None while running."""
        code: int | None = self._transport.get_returncode()
        return code

    async def wait(self) -> int:
        """Wait until the process exits and return its return code."""
        code: int = await self._transport._wait()
        return code

    def send_signal(self, signal: int) -> None:
        """Send *signal* to the child."""
        self._transport.send_signal(signal)

    def terminate(self) -> None:
        """Send SIGTERM to the child."""
        self._transport.terminate()

    def kill(self) -> None:
        """Send SIGKILL to the child."""
        self._transport.kill()

    async def _feed_stdin(self, input: bytes | None) -> None:
        debug = self._loop.get_debug()
        # Not checked: communicate(input) without a stdin pipe fails on
        # None.write() on 3.11/3.12, as asyncio's does.
        stdin: Any = self.stdin
        try:
            if input is not None or not _CLOSE_STDIN_WITHOUT_INPUT:
                stdin.write(input)
                if debug:
                    logger.debug("%r communicate: feed stdin (%s bytes)", self, len(input or b""))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The child need not read all its input: like subprocess, ignore it.
            if debug:
                logger.debug("%r communicate: stdin got %r", self, exc)
        if debug:
            logger.debug("%r communicate: close stdin", self)
        stdin.close()

    async def _read_stream(self, fd: int) -> bytes:
        transport = self._transport.get_pipe_transport(fd)
        stream = self.stderr if fd == 2 else self.stdout
        assert stream is not None
        debug = self._loop.get_debug()
        if debug:
            logger.debug("%r communicate: read %s", self, "stdout" if fd == 1 else "stderr")
        output = await stream.read()
        if debug:
            logger.debug("%r communicate: close %s", self, "stdout" if fd == 1 else "stderr")
        transport.close()
        return output

    async def communicate(self, input: bytes | None = None) -> tuple[bytes | None, bytes | None]:
        """Send *input* to stdin, read stdout and stderr to EOF, wait for the exit.

        Returns ``(stdout_data, stderr_data)``; None for a stream not piped.
        """
        feed = self.stdin is not None if _CLOSE_STDIN_WITHOUT_INPUT else input is not None
        # Only the piped streams become tasks; the others are simply None.
        coros: list[Any] = []
        if feed:
            coros.append(self._feed_stdin(input))
        if self.stdout is not None:
            coros.append(self._read_stream(1))
        if self.stderr is not None:
            coros.append(self._read_stream(2))
        results: list[Any] = list(await gather(*coros)) if coros else []
        if feed:
            del results[0]
        stdout = results.pop(0) if self.stdout is not None else None
        stderr = results.pop(0) if self.stderr is not None else None
        await self.wait()
        return (stdout, stderr)


async def create_subprocess_shell(
    cmd: str | bytes,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run *cmd* through the shell; return a Process.

    Pass ``PIPE`` for *stdin*/*stdout*/*stderr* to get streams; other keyword
    arguments go to ``loop.subprocess_shell()`` and ``subprocess.Popen``.
    """
    loop = get_running_loop()
    transport, protocol = await loop.subprocess_shell(
        lambda: SubprocessStreamProtocol(limit=limit, loop=loop),
        cmd, stdin=stdin, stdout=stdout, stderr=stderr, **kwds,
    )
    return Process(transport, protocol, loop)


async def create_subprocess_exec(
    program: Any,
    *args: Any,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run *program* with *args* (no shell); return a Process.

    Pass ``PIPE`` for *stdin*/*stdout*/*stderr* to get streams; other keyword
    arguments go to ``loop.subprocess_exec()`` and ``subprocess.Popen``.
    """
    loop = get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: SubprocessStreamProtocol(limit=limit, loop=loop),
        program, *args, stdin=stdin, stdout=stdout, stderr=stderr, **kwds,
    )
    return Process(transport, protocol, loop)

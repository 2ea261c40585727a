"""The subprocess transport: a child process and its pipes, on the loop.

The transport starts the child with ``subprocess.Popen``, wraps each piped
stdin/stdout/stderr in a pipe transport whose small protocol forwards to the
transport, and learns of the child's exit from the loop (see
``subprocess.py``: a pidfd, or a waiting thread).  Every event reaches the
user's ``SubprocessProtocol`` through ``call_soon``, as on asyncio, so the
order of pipe data, pipe closes and the exit is the same on both loops.

``connection_lost()`` follows once the child has exited *and* every pipe is
closed; that is also when ``_wait()`` returns.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from asyncio import BaseProtocol, Protocol, SubprocessProtocol, SubprocessTransport
from collections.abc import Callable
from signal import SIGKILL, SIGTERM
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidal._core.loop import BaseEventLoop

logger = logging.getLogger("asyncio")

# 3.13 signals the pid itself; 3.11/3.12 go through Popen, which polls first.
_PY313 = sys.version_info >= (3, 13)
# 3.12+ also ignores PermissionError (a setuid child) when close() kills.
_KILL_ERRORS: tuple[type[OSError], ...] = (
    (ProcessLookupError, PermissionError) if sys.version_info >= (3, 12)
    else (ProcessLookupError,)
)


class WriteSubprocessPipeProto(BaseProtocol):
    """The protocol of the child's stdin pipe: reports to the transport."""

    # __dict__: instance patching works as on asyncio's (slot-less) protocols.
    __slots__ = ("proc", "fd", "pipe", "disconnected", "__dict__")

    def __init__(self, proc: _UnixSubprocessTransport, fd: int) -> None:
        self.proc: _UnixSubprocessTransport | None = proc
        self.fd = fd
        self.pipe: Any = None
        self.disconnected = False

    def connection_made(self, transport: Any) -> None:
        """Remember the pipe transport."""
        self.pipe = transport

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_lost(self, exc: BaseException | None) -> None:
        """The pipe closed: tell the transport."""
        self.disconnected = True
        assert self.proc is not None
        self.proc._pipe_connection_lost(self.fd, exc)
        self.proc = None

    def pause_writing(self) -> None:
        """The child's stdin is full: pass it on to the user's protocol."""
        assert self.proc is not None
        self.proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        """The child's stdin drained: pass it on to the user's protocol."""
        assert self.proc is not None
        self.proc._protocol.resume_writing()


class ReadSubprocessPipeProto(WriteSubprocessPipeProto, Protocol):
    """The protocol of the child's stdout or stderr pipe."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        """Forward output to the transport."""
        assert self.proc is not None
        self.proc._pipe_data_received(self.fd, data)


class _UnixSubprocessTransport(SubprocessTransport):
    """A running child process with its pipes."""

    # __dict__: instance methods can be set or mock.patch.object'ed, as on asyncio's.
    __slots__ = (
        "_closed", "_protocol", "_loop", "_proc", "_pid", "_returncode", "_exit_waiters",
        "_pending_calls", "_pipes", "_finished", "_reaped", "__weakref__", "__dict__",
    )

    _extra: dict[str, Any]  # a slot of asyncio's BaseTransport

    def __init__(
        self,
        loop: BaseEventLoop,
        protocol: SubprocessProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(extra)
        self._closed = False
        self._protocol: Any = protocol
        self._loop: Any = loop
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._returncode: int | None = None
        self._exit_waiters: list[Any] | None = []
        self._pending_calls: list[tuple[Callable[..., object], tuple[Any, ...]]] | None = []
        self._pipes: dict[int, WriteSubprocessPipeProto | None] = {}
        self._finished = False
        #: True once the child is waited for: its pid may be reused, never signal it.
        self._reaped = False

        if stdin == subprocess.PIPE:
            self._pipes[0] = None
        if stdout == subprocess.PIPE:
            self._pipes[1] = None
        if stderr == subprocess.PIPE:
            self._pipes[2] = None

        try:
            self._proc = subprocess.Popen(
                args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                universal_newlines=False, bufsize=bufsize, **kwargs,
            )
        except BaseException:
            self.close()
            raise

        self._pid = self._proc.pid
        self._extra["subprocess"] = self._proc
        if loop._debug:
            program = args if isinstance(args, (bytes, str)) else args[0]
            logger.debug("process %r created: pid %s", program, self._pid)
        loop.create_task(self._connect_pipes(waiter))

    async def _connect_pipes(self, waiter: Any) -> None:
        # Through the loop's public connect_*_pipe(), one pipe after the
        # other, as asyncio does: a loop that overrides them sees the calls,
        # and the callbacks come in the same turns.
        proc = self._proc
        assert proc is not None
        attempted: dict[int, WriteSubprocessPipeProto] = {}
        try:
            if proc.stdin is not None:
                await self._connect_pipe(0, proc.stdin, attempted)
            if proc.stdout is not None:
                await self._connect_pipe(1, proc.stdout, attempted)
            if proc.stderr is not None:
                await self._connect_pipe(2, proc.stderr, attempted)
            assert self._pending_calls is not None
            loop = self._loop
            loop.call_soon(self._protocol.connection_made, self)
            for callback, data in self._pending_calls:
                loop.call_soon(callback, *data)
            self._pending_calls = None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._abandon_protocol(proc, attempted)
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)

    async def _connect_pipe(
        self, fd: int, file: Any, attempted: dict[int, WriteSubprocessPipeProto]
    ) -> None:
        proto = WriteSubprocessPipeProto(self, fd) if fd == 0 else ReadSubprocessPipeProto(self, fd)
        attempted[fd] = proto
        if fd == 0:
            await self._loop.connect_write_pipe(lambda: proto, file)
        else:
            await self._loop.connect_read_pipe(lambda: proto, file)
        self._pipes[fd] = proto

    def _abandon_protocol(
        self, proc: subprocess.Popen[bytes], attempted: dict[int, WriteSubprocessPipeProto]
    ) -> None:
        # Connecting failed: the caller closes us and awaits _wait(), which
        # needs every pipe to report its close.  A pipe with a transport is
        # kept (close() closes it); one without is forgotten, its file closed.
        for fd, file in ((0, proc.stdin), (1, proc.stdout), (2, proc.stderr)):
            if fd not in self._pipes or self._pipes[fd] is not None:
                continue
            proto = attempted.get(fd)
            if proto is not None and proto.pipe is not None:
                self._pipes[fd] = proto
            else:
                del self._pipes[fd]
                if file is not None:
                    file.close()
        # The user's protocol never saw connection_made(): it gets nothing
        # more.  A blank protocol takes the events, so that the transport
        # still finishes and _wait() returns.
        pending = self._pending_calls or []
        self._pending_calls = None
        self._protocol = SubprocessProtocol()
        for callback, data in pending:
            if callback == self._call_connection_lost:
                self._loop.call_soon(callback, *data)

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        else:
            info.append("not started")
        stdin = self._pipes.get(0)
        if stdin is not None:
            info.append(f"stdin={stdin.pipe}")
        stdout = self._pipes.get(1)
        stderr = self._pipes.get(2)
        if stdout is not None and stderr is stdout:
            info.append(f"stdout=stderr={stdout.pipe}")
        else:
            if stdout is not None:
                info.append(f"stdout={stdout.pipe}")
            if stderr is not None:
                info.append(f"stderr={stderr.pipe}")
        return "<{}>".format(" ".join(info))

    def set_protocol(self, protocol: BaseProtocol) -> None:  # type: ignore[override]
        """Deliver further events to *protocol*."""
        self._protocol = protocol

    def get_protocol(self) -> Any:
        """The user's SubprocessProtocol."""
        return self._protocol

    def is_closing(self) -> bool:
        """True once close() was called."""
        return self._closed

    def close(self) -> None:
        """Close the pipes and kill the child if it is still running."""
        if self._closed:
            return
        self._closed = True
        for proto in self._pipes.values():
            if proto is None:
                continue
            proto.pipe.close()
        proc = self._proc
        # Popen.poll() may reap the child before the loop's exit watcher
        # does: the watcher then takes the status from Popen.
        if proc is not None and self._returncode is None and proc.poll() is None:
            if self._loop._debug:
                logger.warning("Close running child process: kill %r", self)
            try:
                proc.kill()
            except _KILL_ERRORS:
                pass  # already gone, or setuid
            # _proc stays: the exit is still to be reported.

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()

    def get_pid(self) -> int | None:  # type: ignore[override]
        """The child's process id."""
        return self._pid

    def get_returncode(self) -> int | None:
        """The exit code (a negative signal number if killed), None while running."""
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        """The pipe transport of fd 0, 1 or 2; None if that stream is not piped."""
        proto = self._pipes.get(fd)
        if proto is None:
            return None
        return proto.pipe

    def _check_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise ProcessLookupError()
        return self._proc

    def send_signal(self, signal: int) -> None:
        """Send *signal* to the child; nothing happens once it has exited."""
        proc = self._check_proc()
        if not _PY313:
            proc.send_signal(signal)
            return
        if self._reaped:
            return  # its pid may already belong to another process
        try:
            os.kill(proc.pid, signal)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        """Send SIGTERM to the child."""
        if _PY313:
            self.send_signal(SIGTERM)
        else:
            self._check_proc().terminate()

    def kill(self) -> None:
        """Send SIGKILL to the child."""
        if _PY313:
            self.send_signal(SIGKILL)
        else:
            self._check_proc().kill()

    # -- events from the pipes and the exit watcher ------------------------------

    def _call(self, cb: Callable[..., object], *data: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((cb, data))
        else:
            self._loop.call_soon(cb, *data)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _process_exited(self, returncode: int) -> None:
        assert returncode is not None, returncode
        assert self._returncode is None, self._returncode
        if self._loop._debug:
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        proc = self._proc
        if proc is not None and proc.returncode is None:
            # The loop reaped the child, not Popen: tell Popen, or its
            # __del__ would think the child is still running.
            proc.returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()

    async def _wait(self) -> int:
        """Wait until the process exits and return its return code."""
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        assert self._exit_waiters is not None
        self._exit_waiters.append(waiter)
        result: int = await waiter
        return result

    def _try_finish(self) -> None:
        assert not self._finished
        if self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            assert self._exit_waiters is not None
            for waiter in self._exit_waiters:
                if not waiter.cancelled():
                    waiter.set_result(self._returncode)
            self._exit_waiters = None
            self._loop = None
            self._proc = None
            self._protocol = None

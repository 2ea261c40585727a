"""Subprocesses on the loop: subprocess_exec, subprocess_shell, and noticing exits.

A child's exit is noticed without any SIGCHLD handler (which would fight
with every other library that installs one): on Linux the loop opens a pidfd
for the child and watches it like any fd; it becomes readable when the child
exits, and then ``waitpid(pid, WNOHANG)`` collects the status.  Where pidfds
are unavailable, a daemon thread per child blocks in ``waitpid`` and hands
the status back with ``call_soon_threadsafe``, as asyncio's
ThreadedChildWatcher does.  Either way only *this* child is waited for.

The exit reaches the transport a turn later (two on 3.11), as with asyncio's
child watchers, so that output read in the same turn is delivered first.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from asyncio import BaseProtocol, SubprocessProtocol, SubprocessTransport
from collections.abc import Callable
from typing import Any, TypeVar

from tidal._core.loop import BaseEventLoop
from tidal._io.subprocess_transport import _UnixSubprocessTransport

logger = logging.getLogger("asyncio")

_P = TypeVar("_P", bound=BaseProtocol)

# 3.11 routes the exit through one more call_soon() than 3.12+.
_EXTRA_HOP = sys.version_info < (3, 12)
_pidfd_works: bool | None = None
# A waiting thread can then leave the reaping to the loop's thread.
_CAN_WAIT_WITHOUT_REAPING = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")


def _can_use_pidfd() -> bool:
    # Decided once: pidfd_open() may exist yet be refused (old kernel, seccomp).
    global _pidfd_works
    if _pidfd_works is None:
        works = hasattr(os, "pidfd_open")
        if works:
            try:
                os.close(os.pidfd_open(os.getpid(), 0))
            except OSError:
                works = False
        _pidfd_works = works
    return _pidfd_works


def _exit_code(status: int) -> int:
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:
        # An exit status we cannot decode: pass it on rather than lose it.
        return status


def _collect(transp: _UnixSubprocessTransport, threaded: bool) -> int | None:
    """Reap the transport's child if it has exited: its return code, else None.

    *threaded* picks the log messages of asyncio's ThreadedChildWatcher (its
    watcher on 3.11, or without pidfds) over its PidfdChildWatcher's.
    """
    pid = transp._pid
    assert pid is not None
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        proc = transp._proc
        if proc is not None and proc.returncode is not None:
            return proc.returncode  # Popen reaped it (poll(), wait(), kill())
        if threaded:
            logger.warning("Unknown child process pid %d, will report returncode 255", pid)
        else:
            logger.warning(
                "child process pid %d exit status already read:  will report returncode 255",
                pid,
            )
        return 255
    if wpid == 0:
        return None
    returncode = _exit_code(status)
    if threaded and transp._loop is not None and transp._loop._debug:
        logger.debug("process %s exited with returncode %s", pid, returncode)
    return returncode


def _format_pipe(fd: Any) -> str:
    if fd == subprocess.PIPE:
        return "<pipe>"
    if fd == subprocess.STDOUT:
        return "<stdout>"
    return repr(fd)


def _check_text_args(bufsize: int, text: Any, encoding: Any, errors: Any) -> None:
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


class SubprocessMixin(BaseEventLoop):
    """Subprocess transports: subprocess_exec and subprocess_shell."""

    def __init__(self, selector: Any = None) -> None:
        super().__init__(selector)
        #: pidfd -> the transport whose child it watches; closed with the loop.
        self._child_pidfds: dict[int, _UnixSubprocessTransport] = {}

    async def subprocess_shell(
        self,
        protocol_factory: Callable[[], _P],
        cmd: bytes | str,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, _P]:
        """Run *cmd* through the shell; return (transport, protocol)."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        _check_text_args(bufsize, text, encoding, errors)
        return await self._start_subprocess(
            protocol_factory, cmd, True, "run shell command", cmd,
            stdin, stdout, stderr, bufsize, kwargs,
        )

    async def subprocess_exec(
        self,
        protocol_factory: Callable[[], _P],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, _P]:
        """Run *program* with *args* (no shell); return (transport, protocol)."""
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        _check_text_args(bufsize, text, encoding, errors)
        return await self._start_subprocess(
            protocol_factory, (program, *args), False, "execute program", program,
            stdin, stdout, stderr, bufsize, kwargs,
        )

    async def _start_subprocess(
        self,
        protocol_factory: Callable[[], Any],
        popen_args: Any,
        shell: bool,
        what: str,
        name: Any,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        kwargs: dict[str, Any],
    ) -> tuple[_UnixSubprocessTransport, Any]:
        protocol = protocol_factory()
        debug_log = None
        if self._debug:
            # Only the program or command: arguments may hold secrets and be long.
            debug_log = f"{what} {name!r}"
            self._log_subprocess(debug_log, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, popen_args, shell, stdin, stdout, stderr, bufsize, **kwargs
        )
        if debug_log is not None:
            logger.info("%s: %r", debug_log, transport)
        return transport, protocol

    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any, stderr: Any) -> None:
        info = [msg]
        if stdin is not None:
            info.append(f"stdin={_format_pipe(stdin)}")
        if stdout is not None and stderr == subprocess.STDOUT:
            info.append(f"stdout=stderr={_format_pipe(stdout)}")
        else:
            if stdout is not None:
                info.append(f"stdout={_format_pipe(stdout)}")
            if stderr is not None:
                info.append(f"stderr={_format_pipe(stderr)}")
        logger.debug(" ".join(info))

    async def _make_subprocess_transport(
        self,
        protocol: SubprocessProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> _UnixSubprocessTransport:
        waiter = self.create_future()
        transp = _UnixSubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize,
            waiter=waiter, extra=extra, **kwargs,
        )
        self._watch_child(transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    # -- noticing exits -----------------------------------------------------------

    def _watch_child(self, transp: _UnixSubprocessTransport) -> None:
        pid = transp._pid
        assert pid is not None
        if _can_use_pidfd():
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                # Reaped already (Popen, or a waitpid(-1) elsewhere).
                if self._child_ready(transp, _EXTRA_HOP):
                    return
            except OSError:
                pass  # out of fds, say: a thread still works
            else:
                self._child_pidfds[pidfd] = transp
                self._add_io(pidfd, self._pidfd_ready, (pidfd, transp), False)
                return
        thread = threading.Thread(
            target=_wait_in_thread, args=(self, transp, pid),
            name=f"tidal-waitpid-{pid}", daemon=True,
        )
        thread.start()

    def _pidfd_ready(self, pidfd: int, transp: _UnixSubprocessTransport) -> None:
        # 3.11's asyncio watches with a thread: its messages, not the pidfd one's.
        if not self._child_ready(transp, _EXTRA_HOP):
            return  # not actually exited yet: keep watching
        self._remove_io(pidfd, False)
        del self._child_pidfds[pidfd]
        os.close(pidfd)

    def _child_ready(self, transp: _UnixSubprocessTransport, threaded: bool) -> bool:
        # Reaping happens here, on the loop's thread, so it cannot race with
        # Popen.poll() called from the loop (by close() or send_signal()).
        returncode = _collect(transp, threaded)
        if returncode is None:
            return False
        self._child_reaped(transp, returncode)
        self._deliver_exit(transp, returncode)
        return True

    @staticmethod
    def _child_reaped(transp: _UnixSubprocessTransport, returncode: int) -> None:
        # From now on its pid may be reused: the transport must not signal
        # it, and Popen must not waitpid() it (it would read ECHILD as 0).
        transp._reaped = True
        proc = transp._proc
        if proc is not None and proc.returncode is None:
            proc.returncode = returncode

    def _deliver_exit(self, transp: _UnixSubprocessTransport, returncode: int) -> None:
        # asyncio's watcher callback hands the exit on with one more
        # call_soon (two on 3.11), so output read meanwhile comes first.
        if _EXTRA_HOP:
            self.call_soon(self.call_soon, transp._process_exited, returncode)
        else:
            self.call_soon(transp._process_exited, returncode)

    def close(self) -> None:
        """Close the loop and the pidfds of children it was still watching."""
        super().close()
        pidfds = self._child_pidfds
        for pidfd in pidfds:
            os.close(pidfd)
        pidfds.clear()


def _wait_in_thread(loop: SubprocessMixin, transp: _UnixSubprocessTransport, pid: int) -> None:
    if _CAN_WAIT_WITHOUT_REAPING:
        # Wait for the exit but leave the reaping to the loop's thread.
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass  # reaped elsewhere: the loop thread reports it
        _call_loop(loop, pid, loop._child_ready, transp, True)
        return
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        returncode = 255
        logger.warning("Unknown child process pid %d, will report returncode 255", pid)
    else:
        returncode = _exit_code(status)
        if loop.get_debug():
            logger.debug("process %s exited with returncode %s", pid, returncode)
    loop._child_reaped(transp, returncode)
    _call_loop(loop, pid, loop._deliver_exit, transp, returncode)


def _call_loop(loop: SubprocessMixin, pid: int, callback: Callable[..., object],
               *args: Any) -> None:
    if loop.is_closed():
        logger.warning("Loop %r that handles pid %r is closed", loop, pid)
        return
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        # The loop closed between the check and the call.
        logger.warning("Loop %r that handles pid %r is closed", loop, pid)

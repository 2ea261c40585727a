"""Pipe transports: the read end and the write end of a pipe, socket or tty.

Both put the fd in non-blocking mode and watch it with the loop's poller.
The read side reads at most ``max_size`` bytes per readiness event and hands
them to ``protocol.data_received``; an empty read is EOF.  The write side
tries ``os.write`` at once and buffers only what the kernel did not take,
with asyncio's high/low water marks driving ``pause_writing`` /
``resume_writing``.  It also watches its fd for *reading*: on a pipe or a
socket that is how a peer that closed its end shows up (EPOLLERR / EPOLLHUP).

The class names are asyncio's, so that reprs read the same on both loops.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
import warnings
from asyncio import BaseProtocol, BaseTransport, ReadTransport, Transport
from typing import TYPE_CHECKING, Any

from tidal._io.flow import WriteFlowControl
from tidal._io.transport import recv_buffer

if TYPE_CHECKING:
    from tidal._core.loop import BaseEventLoop

logger = logging.getLogger("asyncio")

#: After this many writes to a lost pipe, each further write logs a warning.
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5


def _set_result_unless_cancelled(fut: Any, result: object) -> None:
    if not fut.cancelled():
        fut.set_result(result)


class _PipeTransportBase(BaseTransport):
    """What both ends share: owning the pipe, the protocol, repr and teardown."""

    # __dict__: instance methods can be set or mock.patch.object'ed, as on
    # asyncio's pipe transports (CPython's test_subprocess patches pause_reading).
    __slots__ = ("_loop", "_pipe", "_fileno", "_protocol", "_closing", "__weakref__", "__dict__")

    _extra: dict[str, Any]  # a slot of asyncio's BaseTransport
    #: Which direction the repr reports as "polling"/"idle".
    _WRITER: bool = False

    def __init__(self, loop: BaseEventLoop, pipe: Any, extra: dict[str, Any] | None) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop: BaseEventLoop | None = loop
        # Set before anything can fail, so __del__ sees a transport with no pipe.
        self._pipe: Any = None
        # An int from _attach() on: only a failed constructor leaves None.
        self._fileno: int = None  # type: ignore[assignment]
        self._protocol: Any = None
        self._closing = False

    def _attach(self, pipe: Any, protocol: BaseProtocol, refusal: str) -> int:
        # Take *pipe* over (non-blocking) if it is a pipe, socket or
        # character device; return its st_mode.
        fileno: int = pipe.fileno()
        mode = os.fstat(fileno).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ValueError(refusal)
        self._pipe = pipe
        self._fileno = fileno
        self._protocol = protocol
        os.set_blocking(fileno, False)
        return mode

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        loop = self._loop
        # asyncio's reprs say "polling"/"idle" while the loop has its
        # selector, which close() drops; after that they say "open".
        if self._pipe is not None and loop is not None and not loop._closed:
            entry = loop._fds.get(self._fileno)
            watcher = None if entry is None else (entry.writer if self._WRITER else entry.reader)
            info.append("idle" if watcher is None else "polling")
            if self._WRITER:
                info.append(f"bufsize={self._buffered()}")
        elif self._pipe is not None:
            info.append("open")
        else:
            info.append("closed")
        return "<{}>".format(" ".join(info))

    def _buffered(self) -> int:
        return 0

    def set_protocol(self, protocol: BaseProtocol) -> None:  # type: ignore[override]
        """Deliver further events to *protocol*."""
        self._protocol = protocol

    def get_protocol(self) -> Any:
        """The protocol the transport delivers to."""
        return self._protocol

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""
        return self._closing

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def _report(self, message: str, exc: BaseException) -> None:
        assert self._loop is not None
        self._loop.call_exception_handler({
            "message": message,
            "exception": exc,
            "transport": self,
            "protocol": self._protocol,
        })

    def _is_quiet(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        assert self._loop is not None
        if self._is_quiet(exc):
            if self._loop._debug:
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._report(message, exc)
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        raise NotImplementedError

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None


class _UnixReadPipeTransport(_PipeTransportBase, ReadTransport):
    """The read end of a pipe (or a socket or character device) on the loop."""

    __slots__ = ("_paused",)

    #: The most bytes read per readiness event.
    max_size: int = 256 * 1024

    def __init__(
        self,
        loop: BaseEventLoop,
        pipe: Any,
        protocol: BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(loop, pipe, extra)
        self._paused = False
        self._attach(pipe, protocol, "Pipe transport is for pipes/sockets only.")
        loop.call_soon(protocol.connection_made, self)
        # Read only once connection_made() has run.
        loop.call_soon(self._add_reader)
        if waiter is not None:
            # Wake the waiter only once connection_made() has run.
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _add_reader(self) -> None:
        if not self.is_reading():
            return
        assert self._loop is not None
        self._loop._add_io(self._fileno, self._read_ready, (), False)

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        return not self._paused and not self._closing

    def _read_ready(self) -> None:
        try:
            size = self.max_size
            view = recv_buffer(size)
            if len(view) != size:
                view = view[:size]
            # Not os.read(): see recv_buffer().
            data = bytes(view[:os.readv(self._fileno, (view,))])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
        else:
            if data:
                self._protocol.data_received(data)
                return
            loop = self._loop
            assert loop is not None
            if loop._debug:
                logger.info("%r was closed by peer", self)
            self._closing = True
            loop._remove_io(self._fileno, False)
            loop.call_soon(self._protocol.eof_received)
            loop.call_soon(self._call_connection_lost, None)

    def pause_reading(self) -> None:
        """Stop calling data_received() until resume_reading()."""
        if not self.is_reading():
            return
        self._paused = True
        assert self._loop is not None
        self._loop._remove_io(self._fileno, False)
        if self._loop._debug:
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Deliver data to data_received() again."""
        if self._closing or not self._paused:
            return
        self._paused = False
        assert self._loop is not None
        self._loop._add_io(self._fileno, self._read_ready, (), False)
        if self._loop._debug:
            logger.debug("%r resumes reading", self)

    def close(self) -> None:
        """Stop reading; connection_lost(None) follows on the next turn."""
        if not self._closing:
            self._close(None)

    def _is_quiet(self, exc: BaseException) -> bool:
        # EIO is how a pty says its other side went away: not worth a traceback.
        return isinstance(exc, OSError) and exc.errno == errno.EIO

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        loop = self._loop
        assert loop is not None
        loop._remove_io(self._fileno, False)
        loop.call_soon(self._call_connection_lost, exc)


class _UnixWritePipeTransport(WriteFlowControl, _PipeTransportBase, Transport):
    """The write end of a pipe (or a socket or character device) on the loop.

    A Transport, not only a WriteTransport, as asyncio's is (through its flow
    control mixin): is_reading()/pause_reading()/resume_reading() are
    asyncio.ReadTransport's, which raise NotImplementedError.
    """

    __slots__ = ("_buffer", "_conn_lost", "_protocol_paused", "_high_water", "_low_water")

    _WRITER = True

    def __init__(
        self,
        loop: BaseEventLoop,
        pipe: Any,
        protocol: BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(loop, pipe, extra)  # _closing: set by close() and write_eof()
        self._buffer = bytearray()
        self._conn_lost = 0
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        mode = self._attach(
            pipe, protocol, "Pipe transport is only for pipes, sockets and character devices"
        )
        fileno: int = self._fileno
        is_socket = stat.S_ISSOCK(mode)
        is_fifo = stat.S_ISFIFO(mode)
        loop.call_soon(protocol.connection_made, self)
        # Watching the write end for reading reports the peer closing its
        # end (AIX only reports it for sockets).  Start after connection_made().
        if is_socket or (is_fifo and not sys.platform.startswith("aix")):
            loop.call_soon(loop._add_io, fileno, self._read_ready, (), False)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    # -- flow control ---------------------------------------------------------

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return len(self._buffer)

    def _buffered(self) -> int:
        return len(self._buffer)

    # -- I/O --------------------------------------------------------------------

    def _read_ready(self) -> None:
        # The fd is never read: readiness here means the peer closed its end.
        assert self._loop is not None
        if self._loop._debug:
            logger.info("%r was closed by peer", self)
        if self._buffer:
            self._close(BrokenPipeError())
        else:
            self._close()

    def write(self, data: bytes | bytearray | memoryview) -> None:  # type: ignore[override]
        """Write *data*: at once if the pipe takes it, else buffered."""
        # asyncio's assert, spelled so that pytest cannot rewrite the message.
        if __debug__ and not isinstance(data, (bytes, bytearray, memoryview)):
            raise AssertionError(repr(data))
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return

        if not self._buffer:
            # Nothing queued: try the syscall first, buffer only the rest.
            try:
                n = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            assert self._loop is not None
            self._loop._add_io(self._fileno, self._write_ready, (), True)

        self._buffer += data
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        buffer = self._buffer
        assert buffer, "Data should not be empty"
        loop = self._loop
        assert loop is not None
        try:
            n = os.write(self._fileno, buffer)
        except (BlockingIOError, InterruptedError):
            pass
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            buffer.clear()
            self._conn_lost += 1
            # _fatal_error() leaves the writer alone once the buffer is empty.
            loop._remove_io(self._fileno, True)
            self._fatal_error(exc, "Fatal write error on pipe transport")
        else:
            if n == len(buffer):
                buffer.clear()
                loop._remove_io(self._fileno, True)
                self._maybe_resume_protocol()  # may write more
                if self._closing:
                    loop._remove_io(self._fileno, False)
                    self._call_connection_lost(None)
                return
            if n > 0:
                del buffer[:n]

    def can_write_eof(self) -> bool:
        """True: write_eof() closes the pipe once the buffer is flushed."""
        return True

    def write_eof(self) -> None:
        """Close the pipe once everything buffered is written."""
        if self._closing:
            return
        assert self._pipe
        self._closing = True
        if not self._buffer:
            assert self._loop is not None
            self._loop._remove_io(self._fileno, False)
            self._loop.call_soon(self._call_connection_lost, None)

    def is_closing(self) -> bool:
        """True once close(), write_eof() or abort() was called, or the pipe broke."""
        return self._closing

    def close(self) -> None:
        """Flush the buffer, then close the pipe."""
        if self._pipe is not None and not self._closing:
            # For a write pipe, EOF is all that closing needs.
            self.write_eof()

    def abort(self) -> None:
        """Close at once, dropping whatever is buffered."""
        self._close(None)

    def _is_quiet(self, exc: BaseException) -> bool:
        # A broken pipe is an ordinary way for a pipe to end: not worth a traceback.
        return isinstance(exc, OSError)

    def _close(self, exc: BaseException | None = None) -> None:
        self._closing = True
        loop = self._loop
        assert loop is not None
        if self._buffer:
            loop._remove_io(self._fileno, True)
        self._buffer.clear()
        loop._remove_io(self._fileno, False)
        loop.call_soon(self._call_connection_lost, exc)

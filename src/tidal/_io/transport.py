"""What stream and datagram socket transports share: lifecycle, reading state, flow control.

A transport owns its socket.  While it reads, its fd stays registered with
the loop; the registration is a Handle created once, run in the transport's
own context (a copy of its creator's, as asyncio's handles would be), so
protocol callbacks see the context variables of the code that connected.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
import warnings
import weakref
from typing import Any, Final

from tidal._core.handles import Handle
from tidal._core.native import mypyc_attr
from tidal._io.fdwatch import unwatch, watch
from tidal._io.flow import WriteFlowControl
from tidal._io.trsock import TransportSocket

logger: Final = logging.getLogger("asyncio")

#: After this many writes to a lost connection, each further one is logged.
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
_DETACH_ON_DEL: Final = sys.version_info >= (3, 13)


_local: Final = threading.local()
_warn: Final = warnings.warn


def recv_buffer(size: int) -> memoryview:
    """The calling thread's receive buffer, at least *size* bytes.

    Shared by the thread's stream and pipe transports: each read is copied out
    (at its own size) before the protocol sees it, so nothing outlives it.  A
    fresh recv(256 KiB) or os.read(256 KiB) is an mmap() in glibc, shrunk with
    mremap() when less arrives and unmapped when freed: 14 us for a 100-byte
    read, 45 us for 64 KiB, against 0.3 us and 2 us for the copy.
    """
    view: memoryview | None = getattr(_local, "view", None)
    if view is None or len(view) < size:
        view = _local.view = memoryview(bytearray(size))
    return view


def set_result_unless_cancelled(fut: Any, result: Any) -> None:
    """Complete *fut* unless someone cancelled it meanwhile."""
    if not fut.cancelled():
        fut.set_result(result)


# Compiled in the mypyc build.  Where asyncio's transport calls a method of
# its own through ``self`` (so an instance or class patch is obeyed), tidal
# calls it through ``me: Any = self``: a native call would bypass the patch.
@mypyc_attr(allow_interpreted_subclasses=True)
class SocketTransportBase(WriteFlowControl, asyncio.Transport):
    """Socket ownership, close/abort, pause/resume reading and write flow control."""

    # __dict__: tests set and mock.patch.object methods on transport
    # instances, as asyncio's (slot-less) transports allow.  Slot reads are
    # unaffected; the dict exists only once something is stored in it.
    __slots__ = (
        "_loop", "_sock", "_sock_fd", "_protocol", "_protocol_connected", "_server",
        "_conn_lost", "_closing", "_paused", "_protocol_paused", "_high_water",
        "_low_water", "_context", "_read_handle", "_write_handle", "__weakref__", "__dict__",
    )

    # Set before anything can fail, so __del__ always finds it.
    _sock: Any

    def __init__(self, loop: Any, sock: Any, protocol: Any, extra: dict[str, Any] | None,
                 server: Any = None) -> None:
        self._sock = None
        self._extra: dict[str, Any] = {} if extra is None else extra
        self._loop = loop
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        self._extra["socket"] = TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._sock = sock
        self._sock_fd: int = sock.fileno()
        self._protocol: Any = None
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._server: Any = server
        self._conn_lost = 0  # set when connection_lost() is scheduled
        self._closing = False  # set by close()
        self._paused = False  # set by pause_reading()
        self._context = contextvars.copy_context()
        self._read_handle: Handle | None = None
        self._write_handle: Handle | None = None
        if server is not None:
            server._attach(self)
        loop._transports[self._sock_fd] = weakref.ref(self)

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            entry = loop._fds.get(self._sock_fd)
            mask = entry.mask if entry is not None else 0
            info.append("read=polling" if mask & loop._poller.IN else "read=idle")
            state = "polling" if mask & loop._poller.OUT else "idle"
            me: Any = self
            info.append(f"write=<{state}, bufsize={me.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            # A module global, not a default argument: a compiled __del__
            # takes no parameters besides self.
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()
            server = getattr(self, "_server", None)
            if _DETACH_ON_DEL and server is not None:
                server._detach(self)

    # -- protocol -----------------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        """Deliver further events to *protocol*."""
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> Any:
        """The current protocol."""
        return self._protocol

    # get_extra_info() is asyncio.BaseTransport's (it reads self._extra), as on
    # asyncio's socket transports: patching the base class reaches both.

    # -- reading --------------------------------------------------------------

    def _read_ready(self) -> None:
        raise NotImplementedError

    def _start_reading(self) -> None:
        # Register for reading unless paused or closing (asking is_reading(),
        # as asyncio's _add_reader() does, so an instance patch is obeyed).
        me: Any = self
        if self._read_handle is not None or not me.is_reading():
            return
        handle = Handle(me._read_ready, (), self._loop, self._context)
        self._read_handle = handle
        watch(self._loop, self._sock_fd, handle, False)

    def _stop_reading(self) -> None:
        handle = self._read_handle
        if handle is not None:
            self._read_handle = None
            if not unwatch(self._loop, self._sock_fd, False, handle):
                handle.cancel()

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        me: Any = self
        return not me.is_closing() and not self._paused

    def pause_reading(self) -> None:
        """Stop calling data_received() until resume_reading()."""
        me: Any = self
        if not me.is_reading():
            return
        self._paused = True
        self._stop_reading()
        if self._loop._debug:
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Deliver data again after pause_reading()."""
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop._debug:
            logger.debug("%r resumes reading", self)

    # -- writing --------------------------------------------------------------

    def _write_ready(self) -> None:
        raise NotImplementedError

    def _start_writing(self) -> None:
        if self._write_handle is None:
            me: Any = self
            handle = Handle(me._write_ready, (), self._loop, self._context)
            self._write_handle = handle
            watch(self._loop, self._sock_fd, handle, True)

    def _stop_writing(self) -> None:
        handle = self._write_handle
        if handle is not None:
            self._write_handle = None
            if not unwatch(self._loop, self._sock_fd, True, handle):
                handle.cancel()

    # -- closing --------------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() was called, or the connection was lost."""
        return self._closing

    def _has_buffer(self) -> bool:
        raise NotImplementedError

    def _clear_buffer(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close after the buffered data is sent; connection_lost(None) follows."""
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._has_buffer():
            self._conn_lost += 1
            self._stop_writing()
            me: Any = self
            self._loop.call_soon(me._call_connection_lost, None, context=self._context)

    def abort(self) -> None:
        """Close at once, dropping buffered data."""
        me: Any = self
        me._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        # OSErrors are the peer's doing and reach the protocol through
        # connection_lost(); anything else is a bug worth reporting.
        if isinstance(exc, OSError):
            if self._loop._debug:
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        me: Any = self
        me._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._has_buffer():
            self._clear_buffer()
            self._stop_writing()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        me: Any = self
        self._loop.call_soon(me._call_connection_lost, exc, context=self._context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            loop = self._loop
            sock = self._sock
            # A writer or reader someone registered meanwhile must not outlive the fd.
            self._stop_reading()
            self._stop_writing()
            ref = loop._transports.get(self._sock_fd)
            if ref is not None and ref() is self:
                del loop._transports[self._sock_fd]
            sock.close()
            self._sock = None
            self._protocol = None
            self._loop = None
            server = self._server
            if server is not None:
                server._detach(self)
                self._server = None


#: What a subclass adds to its __slots__ for weak references (the loop's
#: transport table holds them): nothing in the pure build, where the base's
#: slots have one; the compiled base (a native class) has none on 3.12+.
WEAKREF_SLOT: Final[tuple[str, ...]] = (
    () if SocketTransportBase.__weakrefoffset__ else ("__weakref__",)
)

"""The stream socket transport (TCP and Unix): direct sends, buffered remainder, flow control.

``write()`` hands the data to the kernel at once and buffers only what the
kernel did not take; only then is the fd watched for writability.  Reads go
from ``recv`` straight to ``protocol.data_received`` (or into the buffer a
``BufferedProtocol`` lends), and the fd stays registered while reading.

The write buffer is one ``bytearray``: appending copies the caller's data
once (so later changes to a caller's bytearray cannot alter what is sent),
and consuming from the front is amortised O(1) in CPython.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from asyncio.constants import _SendfileMode
from typing import Any, Final, cast

from tidal._core.handles import Handle
from tidal._core.native import mypyc_attr, public_class
from tidal._io.addr import set_nodelay
from tidal._io.transport import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    SocketTransportBase,
    logger,
    recv_buffer,
    set_result_unless_cancelled,
)

_BufferedProtocol: Final = asyncio.BufferedProtocol


# Compiled in the mypyc build; calls asyncio makes through ``self`` go through
# ``cast(Any, self)`` (a Python-level lookup) so instance and class patches are obeyed.
@mypyc_attr(allow_interpreted_subclasses=True)
class _SelectorSocketTransport(SocketTransportBase):
    """A connected stream socket as a Transport (named as asyncio's, for identical reprs)."""

    __slots__ = ("_buffer", "_eof", "_empty_waiter", "_buffered", "_recv_size")

    _start_tls_compatible = True
    _sendfile_compatible = _SendfileMode.TRY_NATIVE
    #: Largest read per readiness event.
    max_size = 256 * 1024
    #: Usual read size.  A 256 KiB recv() costs an mmap()/munmap() pair in
    #: glibc (~25 us) however little arrives, so reads grow to max_size only
    #: while they come back full, i.e. while a bulk transfer is under way,
    #: and then go through a per-thread buffer (see _read_ready).
    small_size = 64 * 1024

    def __init__(self, loop: Any, sock: Any, protocol: Any, waiter: Any = None,
                 extra: dict[str, Any] | None = None, server: Any = None) -> None:
        self._buffer = bytearray()
        self._buffered = False
        self._recv_size = self.small_size
        super().__init__(loop, sock, protocol, extra, server)
        self._eof = False
        self._empty_waiter: Any = None
        # Small writes leave at once instead of waiting for the peer's ACK.
        set_nodelay(sock)
        # One callback for what asyncio schedules as three consecutive ones:
        # connection_made(), then start reading, then wake the waiter.
        loop.call_soon(cast(Any, self)._start, protocol, waiter, context=self._context)

    def _start(self, protocol: Any, waiter: Any) -> None:
        try:
            protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # Reported exactly as the failing callback would be on asyncio.
            Handle(protocol.connection_made, (self,), self._loop, self._context)._report(exc)
        self._start_reading()
        if waiter is not None:
            set_result_unless_cancelled(waiter, None)

    def set_protocol(self, protocol: Any) -> None:
        """Deliver further events to *protocol* (BufferedProtocol or Protocol)."""
        self._buffered = isinstance(protocol, _BufferedProtocol)
        self._protocol = protocol
        self._protocol_connected = True

    # -- reading ----------------------------------------------------------------

    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        if self._buffered:
            self._read_into_buffer()
            return
        size = self._recv_size
        try:
            if size <= self.small_size:
                data = self._sock.recv(size)
            else:
                # Bulk reads land in the thread's buffer and are copied out at
                # their size: a recv(256 KiB) that comes back short is shrunk
                # by realloc(), and glibc then serves the next one with an
                # mmap() again: ~45 us (mmap, mremap, munmap and the page
                # faults) for every 64 KiB message, against ~2 us for the copy.
                view = recv_buffer(size)
                data = bytes(view[:self._sock.recv_into(view, size)])
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cast(Any, self)._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._on_eof()
            return
        n = len(data)
        if n == size:
            self._recv_size = self.max_size
        elif n < self.small_size < size:
            self._recv_size = self.small_size
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cast(Any, self)._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_into_buffer(self) -> None:
        try:
            buf = self._protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cast(Any, self)._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            nbytes = self._sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cast(Any, self)._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        try:
            self._protocol.buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cast(Any, self)._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _on_eof(self) -> None:
        if self._loop._debug:
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cast(Any, self)._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # Half-closed: the protocol may still write, but there is nothing
            # more to read.
            self._stop_reading()
        else:
            cast(Any, self).close()

    # -- writing ----------------------------------------------------------------

    def write(self, data: Any) -> None:
        """Send *data*: at once if the kernel takes it, else buffered in order."""
        cls = type(data)  # not .__class__: compiled, that is a generic attribute lookup
        if cls is not bytes and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        buffer = self._buffer
        if not buffer:
            try:
                n = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                cast(Any, self)._fatal_error(exc, "Fatal write error on socket transport")
                return
            if n == (len(data) if cls is not memoryview else data.nbytes):
                return
            if n:
                data = memoryview(data).cast("B")[n:]
            self._start_writing()
        buffer += data
        if len(buffer) > self._high_water and not self._protocol_paused:
            self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        """Write each buffer of *list_of_data*, in one send where possible."""
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if not list_of_data:
            return
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        if self._conn_lost:
            return
        buffer = self._buffer
        try:
            n = self._sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._stop_writing()
            buffer.clear()
            cast(Any, self)._fatal_error(exc, "Fatal write error on socket transport")
            waiter = self._empty_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return
        if n:
            del buffer[:n]
        if self._protocol_paused:
            self._maybe_resume_protocol()  # may write more
        if not buffer:
            self._stop_writing()
            waiter = self._empty_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._closing:
                self._call_connection_lost(None)
            elif self._eof:
                self._sock.shutdown(socket.SHUT_WR)

    def write_eof(self) -> None:
        """Shut down the sending side once the buffer is flushed."""
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer:
            self._sock.shutdown(socket.SHUT_WR)

    def can_write_eof(self) -> bool:
        """Stream sockets can half-close: True."""
        return True

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent."""
        return len(self._buffer)

    def _has_buffer(self) -> bool:
        return bool(self._buffer)

    def _clear_buffer(self) -> None:
        self._buffer.clear()

    # -- sendfile support ---------------------------------------------------------

    def _make_empty_waiter(self) -> Any:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        waiter = self._empty_waiter = self._loop.create_future()
        if not self._buffer:
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        super()._call_connection_lost(exc)
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("Connection is closed by peer"))


# 3.11's socket transport inherits asyncio.WriteTransport.writelines()
# (write(b"".join(...))), so patching that reaches it; 3.12+ has its own.  (A
# class body cannot hold a conditional def under mypyc; 3.11 is never compiled.)
if sys.version_info < (3, 12):
    del _SelectorSocketTransport.writelines

# The class the loop instantiates: in the compiled build an interpreted
# subclass adding weak references (native classes have none on 3.12+).
_PublicTransport: type[_SelectorSocketTransport] = public_class(_SelectorSocketTransport)
_SelectorSocketTransport = _PublicTransport  # type: ignore[misc]

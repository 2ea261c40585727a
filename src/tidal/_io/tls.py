"""TLS over any stream transport, on ``ssl.MemoryBIO``: tidal's ``SSLProtocol``.

``SSLProtocol`` sits where asyncio puts its sslproto: it is the protocol of a
plain (socket) transport and hands an application-facing transport
(``_SSLProtocolTransport``) to the user's protocol.  Ciphertext read from the
socket goes into the ``incoming`` BIO; plaintext comes out of the SSL object
and is delivered to the application; application writes go into the SSL
object and the ``outgoing`` BIO is flushed to the socket in one write.

States, as asyncio's: UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING ->
SHUTDOWN, and back to UNWRAPPED on abort or connection loss.  The
application protocol goes INIT -> CON_MADE [-> EOF] -> CON_LOST.

Speed notes: the socket reads into a buffer shared by the thread's TLS
connections (see ``_shared_buffer``); every callback decrypts all the records
available and delivers them in one data_received(); a read that can only fail
with ``SSLWantReadError`` (nothing left in either the BIO or the SSL object)
is skipped, since raising costs more than the read.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from tidal._io.tls_transport import (
    FLOW_CONTROL_HIGH_WATER_SSL_READ,
    FLOW_CONTROL_HIGH_WATER_SSL_WRITE,
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    SSL_HANDSHAKE_TIMEOUT,
    SSL_SHUTDOWN_TIMEOUT,
    _create_transport_context,
    _force_close,
    _SSLProtocolTransport,
    add_flowcontrol_defaults,
)

__all__ = ("SSLProtocol",)

logger = logging.getLogger("asyncio")

_SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)

# TLS states (asyncio's SSLProtocolState).
_UNWRAPPED = 0
_DO_HANDSHAKE = 1
_WRAPPED = 2
_FLUSHING = 3
_SHUTDOWN = 4
_STATE_NAMES = ("UNWRAPPED", "DO_HANDSHAKE", "WRAPPED", "FLUSHING", "SHUTDOWN")
# state -> the one state it may move to besides UNWRAPPED.
_NEXT_STATE = {_UNWRAPPED: _DO_HANDSHAKE, _DO_HANDSHAKE: _WRAPPED, _WRAPPED: _FLUSHING,
               _FLUSHING: _SHUTDOWN}

# Application protocol states (asyncio's AppProtocolState).
_APP_INIT = 0
_APP_CON_MADE = 1
_APP_EOF = 2
_APP_CON_LOST = 3


_local = threading.local()


def _shared_buffer(size: int) -> memoryview:
    # One receive buffer per thread, shared by all its TLS connections:
    # buffer_updated() empties it into the connection's BIO before the socket
    # transport reads again, so no two connections ever hold data in it at
    # once.  A buffer per connection (asyncio's way) costs 256 KiB of memory
    # and, while connections overlap, an mmap and 64 page faults each.
    view: memoryview | None = getattr(_local, "view", None)
    if view is None or len(view) < size:
        view = _local.view = memoryview(bytearray(size))
    return view


class SSLProtocol(asyncio.BufferedProtocol):
    """TLS layered over a stream transport, exposing a transport to *app_protocol*."""

    __slots__ = (
        "_ssl_buffer_view", "_server_side", "_server_hostname", "_sslcontext",
        "_extra", "_write_backlog", "_write_buffer_size", "_waiter", "_loop", "_app_protocol",
        "_app_protocol_is_buffer", "_app_protocol_get_buffer", "_app_protocol_buffer_updated",
        "_app_transport", "_app_transport_created", "_transport", "_ssl_handshake_timeout",
        "_ssl_shutdown_timeout", "_incoming", "_outgoing", "_state", "_conn_lost", "_app_state",
        "_sslobj", "_sslobj_read", "_sslobj_write", "_sslobj_pending", "_ssl_writing_paused",
        "_app_reading_paused", "_ssl_reading_paused", "_incoming_high_water",
        "_incoming_low_water", "_eof_received", "_app_writing_paused", "_outgoing_high_water",
        "_outgoing_low_water", "_handshake_start_time", "_handshake_timeout_handle",
        "_shutdown_timeout_handle", "__weakref__",
        "__dict__",  # instances take patched methods, as asyncio's do
    )

    #: Size of the buffer the socket is read into.
    max_size = 256 * 1024
    #: Size of one plaintext read: a TLS record carries at most 16 KiB.  A
    #: 256 KiB read as asyncio does would cost glibc an mmap/mremap/munmap per
    #: call, since the result is shrunk before it is freed.
    read_size = 16 * 1024

    def __init__(
        self,
        loop: Any,
        app_protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext | None,
        waiter: Any,
        server_side: bool = False,
        server_hostname: str | None = None,
        call_connection_made: bool = True,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        self._ssl_buffer_view = _shared_buffer(self.max_size)

        if ssl_handshake_timeout is None:
            ssl_handshake_timeout = SSL_HANDSHAKE_TIMEOUT
        elif ssl_handshake_timeout <= 0:
            raise ValueError(
                f"ssl_handshake_timeout should be a positive number, got {ssl_handshake_timeout}"
            )
        if ssl_shutdown_timeout is None:
            ssl_shutdown_timeout = SSL_SHUTDOWN_TIMEOUT
        elif ssl_shutdown_timeout <= 0:
            raise ValueError(
                f"ssl_shutdown_timeout should be a positive number, got {ssl_shutdown_timeout}"
            )
        if not sslcontext:
            sslcontext = _create_transport_context(server_side, server_hostname)

        self._server_side = server_side
        self._server_hostname = server_hostname if server_hostname and not server_side else None
        self._sslcontext = sslcontext
        # More entries are added when the handshake completes.
        self._extra: dict[str, Any] = {"sslcontext": sslcontext}

        self._write_backlog: deque[Any] = deque()
        self._write_buffer_size = 0
        self._waiter = waiter
        self._loop = loop
        self._app_protocol: Any = None
        self._app_protocol_is_buffer = False
        self._app_protocol_get_buffer: Any = None
        self._app_protocol_buffer_updated: Any = None
        self._set_app_protocol(app_protocol)
        self._app_transport: _SSLProtocolTransport | None = None
        self._app_transport_created = False
        self._transport: Any = None
        self._ssl_handshake_timeout: float = ssl_handshake_timeout
        self._ssl_shutdown_timeout: float = ssl_shutdown_timeout
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._state = _UNWRAPPED
        self._conn_lost = 0
        self._app_state = _APP_INIT if call_connection_made else _APP_CON_MADE
        sslobj = sslcontext.wrap_bio(
            self._incoming, self._outgoing,
            server_side=self._server_side, server_hostname=self._server_hostname,
        )
        self._sslobj: ssl.SSLObject = sslobj
        # The stock SSLObject's read/write are Python wrappers around the C
        # object: call the C methods directly on the hot path.  A custom
        # sslobject_class keeps its own methods.
        inner: Any = sslobj
        if type(sslobj) is ssl.SSLObject:
            inner = inner._sslobj
        self._sslobj_read: Any = inner.read
        self._sslobj_write: Any = inner.write
        self._sslobj_pending: Any = inner.pending

        self._handshake_start_time: float | None = None
        self._handshake_timeout_handle: Any = None
        self._shutdown_timeout_handle: Any = None

        self._ssl_writing_paused = False
        self._app_reading_paused = False
        self._ssl_reading_paused = False
        self._incoming_high_water = 0
        self._incoming_low_water = 0
        self._set_read_buffer_limits()
        self._eof_received = False
        self._app_writing_paused = False
        self._outgoing_high_water = 0
        self._outgoing_low_water = 0
        self._set_write_buffer_limits()
        self._get_app_transport()

    def _set_app_protocol(self, app_protocol: Any) -> None:
        self._app_protocol = app_protocol
        if hasattr(app_protocol, "get_buffer") and isinstance(
            app_protocol, asyncio.BufferedProtocol
        ):
            self._app_protocol_get_buffer = app_protocol.get_buffer
            self._app_protocol_buffer_updated = app_protocol.buffer_updated
            self._app_protocol_is_buffer = True
        else:
            self._app_protocol_is_buffer = False

    def _wakeup_waiter(self, exc: BaseException | None = None) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        if not waiter.cancelled():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(None)
        self._waiter = None

    def _get_app_transport(self) -> _SSLProtocolTransport:
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("Creating _SSLProtocolTransport twice")
            self._app_transport = _SSLProtocolTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport

    # -- the lower transport's protocol interface ------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The socket is connected: start the handshake."""
        self._transport = transport
        self._start_handshake()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The socket is closed: tell the application (unless still handshaking)."""
        self._write_backlog.clear()
        self._outgoing.read()
        self._conn_lost += 1
        if self._app_transport is not None:
            # Only so that its __del__ does not warn.
            self._app_transport._closed = True
        if self._state != _DO_HANDSHAKE and self._app_state in (_APP_CON_MADE, _APP_EOF):
            self._app_state = _APP_CON_LOST
            self._loop.call_soon(self._app_protocol.connection_lost, exc)
        self._set_state(_UNWRAPPED)
        self._transport = None
        self._app_transport = None
        self._app_protocol = None
        self._wakeup_waiter(exc)
        if self._shutdown_timeout_handle:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if self._handshake_timeout_handle:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None

    def get_buffer(self, sizehint: int) -> memoryview:
        """The buffer the socket reads ciphertext into (at least *sizehint* bytes)."""
        want = sizehint
        if want <= 0 or want > self.max_size:
            want = self.max_size
        if len(self._ssl_buffer_view) < want:
            self._ssl_buffer_view = memoryview(bytearray(want))
        return self._ssl_buffer_view

    def buffer_updated(self, nbytes: int) -> None:
        """*nbytes* of ciphertext arrived in the buffer."""
        self._incoming.write(self._ssl_buffer_view[:nbytes])
        if self._state == _WRAPPED:
            self._do_read()
        else:
            self._process_incoming()

    def data_received(self, data: bytes) -> None:
        """Ciphertext arrived from a transport that does not use get_buffer()."""
        self._incoming.write(data)
        if self._state == _WRAPPED:
            self._do_read()
        else:
            self._process_incoming()

    def _process_incoming(self) -> None:
        # Every state but WRAPPED, the common one tested by the callers.
        state = self._state
        if state == _DO_HANDSHAKE:
            self._do_handshake()
        elif state == _FLUSHING:
            self._do_flush()
        elif state == _SHUTDOWN:
            self._do_shutdown()

    def eof_received(self) -> bool | None:
        """The peer half-closed the socket: finish (or fail) the TLS session."""
        self._eof_received = True
        try:
            if self._loop.get_debug():
                logger.debug("%r received EOF", self)
            state = self._state
            if state == _DO_HANDSHAKE:
                self._on_handshake_complete(ConnectionResetError)
            elif state == _WRAPPED:
                self._set_state(_FLUSHING)
                if self._app_reading_paused:
                    return True
                self._do_flush()
            elif state == _FLUSHING:
                self._do_write()
                self._set_state(_SHUTDOWN)
                self._do_shutdown()
            elif state == _SHUTDOWN:
                self._do_shutdown()
        except Exception:
            self._transport.close()
            raise
        return None

    def pause_writing(self) -> None:
        """The socket's write buffer is full: keep ciphertext in the BIO."""
        assert not self._ssl_writing_paused
        self._ssl_writing_paused = True

    def resume_writing(self) -> None:
        """The socket's write buffer drained: flush the BIO."""
        assert self._ssl_writing_paused
        self._ssl_writing_paused = False
        self._process_outgoing()

    # -- state -------------------------------------------------------------------

    def _get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._extra:
            return self._extra[name]
        if self._transport is not None:
            return self._transport.get_extra_info(name, default)
        return default

    def _set_state(self, new_state: int) -> None:
        if new_state == _UNWRAPPED or _NEXT_STATE.get(self._state) == new_state:
            self._state = new_state
            return
        raise RuntimeError(
            f"cannot switch state from SSLProtocolState.{_STATE_NAMES[self._state]} "
            f"to SSLProtocolState.{_STATE_NAMES[new_state]}"
        )

    # -- handshake -----------------------------------------------------------------

    def _start_handshake(self) -> None:
        loop = self._loop
        if loop.get_debug():
            logger.debug("%r starts SSL handshake", self)
            self._handshake_start_time = loop.time()
        else:
            self._handshake_start_time = None
        self._set_state(_DO_HANDSHAKE)
        self._handshake_timeout_handle = loop.call_later(
            self._ssl_handshake_timeout, self._check_handshake_timeout
        )
        self._do_handshake()

    def _check_handshake_timeout(self) -> None:
        if self._state == _DO_HANDSHAKE:
            msg = (
                f"SSL handshake is taking longer than {self._ssl_handshake_timeout} seconds: "
                f"aborting the connection"
            )
            self._fatal_error(ConnectionAbortedError(msg))

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except _SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    def _on_handshake_complete(self, handshake_exc: Any) -> None:
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None
        sslobj = self._sslobj
        try:
            if handshake_exc is not None:
                # May be an exception class (ConnectionResetError on early EOF).
                raise handshake_exc
            self._set_state(_WRAPPED)
            peercert = sslobj.getpeercert()
        except Exception as exc:
            self._set_state(_UNWRAPPED)
            if isinstance(exc, ssl.CertificateError):
                msg = "SSL handshake failed on verifying the certificate"
            else:
                msg = "SSL handshake failed"
            self._fatal_error(exc, msg)
            self._wakeup_waiter(exc)
            return

        loop = self._loop
        if loop.get_debug():
            dt = loop.time() - (self._handshake_start_time or 0.0)
            logger.debug("%r: SSL handshake took %.1f ms", self, dt * 1e3)
        extra = self._extra
        extra["peercert"] = peercert
        extra["cipher"] = sslobj.cipher()
        extra["compression"] = sslobj.compression()
        extra["ssl_object"] = sslobj
        if self._app_state == _APP_INIT:
            self._app_state = _APP_CON_MADE
            self._app_protocol.connection_made(self._get_app_transport())
        self._wakeup_waiter()
        self._do_read()

    # -- shutdown ------------------------------------------------------------------

    def _start_shutdown(self) -> None:
        state = self._state
        if state == _FLUSHING or state == _SHUTDOWN or state == _UNWRAPPED:
            return
        if self._app_transport is not None:
            self._app_transport._closed = True
        if state == _DO_HANDSHAKE:
            self._abort(None)
        else:
            self._set_state(_FLUSHING)
            self._shutdown_timeout_handle = self._loop.call_later(
                self._ssl_shutdown_timeout, self._check_shutdown_timeout
            )
            self._do_flush()

    def _check_shutdown_timeout(self) -> None:
        if self._state == _FLUSHING or self._state == _SHUTDOWN:
            _force_close(self._transport, TimeoutError("SSL shutdown timed out"))

    def _do_flush(self) -> None:
        self._do_read()
        self._set_state(_SHUTDOWN)
        self._do_shutdown()

    def _do_shutdown(self) -> None:
        try:
            if not self._eof_received:
                self._sslobj.unwrap()
        except _SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            self._on_shutdown_complete(exc)
        else:
            self._process_outgoing()
            self._call_eof_received()
            self._on_shutdown_complete(None)

    def _on_shutdown_complete(self, shutdown_exc: BaseException | None) -> None:
        if self._shutdown_timeout_handle is not None:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if shutdown_exc:
            self._fatal_error(shutdown_exc)
        else:
            self._loop.call_soon(self._transport.close)

    def _abort(self, exc: BaseException | None) -> None:
        self._set_state(_UNWRAPPED)
        if self._transport is not None:
            _force_close(self._transport, exc)

    # -- outgoing ------------------------------------------------------------------

    def _write_appdata(self, list_of_data: Iterable[Any]) -> None:
        state = self._state
        if state == _FLUSHING or state == _SHUTDOWN or state == _UNWRAPPED:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("SSL connection is closed")
            self._conn_lost += 1
            return
        backlog = self._write_backlog
        size = self._write_buffer_size
        for data in list_of_data:
            backlog.append(data)
            size += len(data)
        self._write_buffer_size = size
        try:
            if state == _WRAPPED:
                self._do_write()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _write_one(self, data: Any) -> None:
        # transport.write(): with nothing queued, straight into OpenSSL.
        backlog = self._write_backlog
        if self._state != _WRAPPED or backlog:
            self._write_appdata((data,))
            return
        try:
            try:
                count = self._sslobj_write(data)
            except _SSLAgainErrors:
                count = 0
            if count < len(data):
                # Not (all) taken, as during a renegotiation: queue the rest.
                rest = data[count:] if count else data
                backlog.append(rest)
                self._write_buffer_size += len(rest)
            self._process_outgoing()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _do_write(self) -> None:
        backlog = self._write_backlog
        write = self._sslobj_write
        try:
            while backlog:
                data = backlog[0]
                count = write(data)
                data_len = len(data)
                if count < data_len:
                    # Only partly taken (renegotiation): keep the rest first in line.
                    backlog[0] = data[count:]
                    self._write_buffer_size -= count
                else:
                    backlog.popleft()
                    self._write_buffer_size -= data_len
        except _SSLAgainErrors:
            pass
        self._process_outgoing()

    def _process_outgoing(self) -> None:
        outgoing = self._outgoing
        if outgoing.pending and not self._ssl_writing_paused:
            self._transport.write(outgoing.read())
        # _control_app_writing(), inlined for the common case of no change.
        size = outgoing.pending + self._write_buffer_size
        if self._app_writing_paused:
            if size <= self._outgoing_low_water:
                self._control_app_writing()
        elif size >= self._outgoing_high_water:
            self._control_app_writing()

    # -- incoming ------------------------------------------------------------------

    def _do_read(self) -> None:
        state = self._state
        if state != _WRAPPED and state != _FLUSHING:
            return
        try:
            if not self._app_reading_paused:
                if self._app_protocol_is_buffer:
                    self._do_read__buffered()
                else:
                    self._do_read__copied()
                if self._write_backlog:
                    self._do_write()
                else:
                    self._process_outgoing()
            # _control_ssl_reading(), inlined for the common case of no change.
            size = self._incoming.pending
            if self._ssl_reading_paused:
                if size <= self._incoming_low_water:
                    self._control_ssl_reading()
            elif size >= self._incoming_high_water:
                self._control_ssl_reading()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _do_read__buffered(self) -> None:
        read = self._sslobj_read
        incoming = self._incoming
        pending = self._sslobj_pending
        offset = 0
        count = 1
        # A memoryview so that slicing never copies, whatever get_buffer() returned.
        buf = memoryview(self._app_protocol_get_buffer(self._get_read_buffer_size()))
        wants = len(buf)
        try:
            count = read(wants, buf)
            if count > 0:
                offset = count
                while offset < wants:
                    if not incoming.pending and not pending():
                        break  # the next read could only raise SSLWantReadError
                    count = read(wants - offset, buf[offset:])
                    if count > 0:
                        offset += count
                    else:
                        break
                else:
                    # The application's buffer is full: continue on the next turn.
                    self._loop.call_soon(self._do_read)
        except _SSLAgainErrors:
            pass
        if offset > 0:
            self._app_protocol_buffer_updated(offset)
        if not count:
            # close_notify from the peer.
            self._call_eof_received()
            self._start_shutdown()

    def _do_read__copied(self) -> None:
        read = self._sslobj_read
        incoming = self._incoming
        pending = self._sslobj_pending
        size = self.read_size
        chunk = b"1"
        first: bytes | None = None
        rest: list[bytes] | None = None
        try:
            while incoming.pending or pending():
                chunk = read(size)
                if not chunk:
                    break
                if first is None:
                    first = chunk
                elif rest is None:
                    rest = [first, chunk]
                else:
                    rest.append(chunk)
        except _SSLAgainErrors:
            pass
        if rest is not None:
            self._app_protocol.data_received(b"".join(rest))
        elif first is not None:
            self._app_protocol.data_received(first)
        if not chunk:
            # close_notify from the peer.
            self._call_eof_received()
            self._start_shutdown()

    def _call_eof_received(self) -> None:
        try:
            if self._app_state == _APP_CON_MADE:
                self._app_state = _APP_EOF
                keep_open = self._app_protocol.eof_received()
                if keep_open:
                    logger.warning(
                        "returning true from eof_received() has no effect when using ssl"
                    )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as ex:
            self._fatal_error(ex, "Error calling eof_received()")

    # -- flow control ----------------------------------------------------------------

    def _control_app_writing(self) -> None:
        size = self._outgoing.pending + self._write_buffer_size
        if size >= self._outgoing_high_water and not self._app_writing_paused:
            self._app_writing_paused = True
            try:
                self._app_protocol.pause_writing()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler({
                    "message": "protocol.pause_writing() failed",
                    "exception": exc,
                    "transport": self._app_transport,
                    "protocol": self,
                })
        elif size <= self._outgoing_low_water and self._app_writing_paused:
            self._app_writing_paused = False
            try:
                self._app_protocol.resume_writing()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler({
                    "message": "protocol.resume_writing() failed",
                    "exception": exc,
                    "transport": self._app_transport,
                    "protocol": self,
                })

    def _get_write_buffer_size(self) -> int:
        return self._outgoing.pending + self._write_buffer_size

    def _set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._outgoing_high_water, self._outgoing_low_water = add_flowcontrol_defaults(
            high, low, FLOW_CONTROL_HIGH_WATER_SSL_WRITE
        )

    def _pause_reading(self) -> None:
        self._app_reading_paused = True

    def _resume_reading(self) -> None:
        if self._app_reading_paused:
            self._app_reading_paused = False
            self._loop.call_soon(self._resume_app_reading)

    def _resume_app_reading(self) -> None:
        state = self._state
        if state == _WRAPPED:
            self._do_read()
        elif state == _FLUSHING:
            self._do_flush()
        elif state == _SHUTDOWN:
            self._do_shutdown()

    def _control_ssl_reading(self) -> None:
        size = self._incoming.pending
        if size >= self._incoming_high_water and not self._ssl_reading_paused:
            self._ssl_reading_paused = True
            self._transport.pause_reading()
        elif size <= self._incoming_low_water and self._ssl_reading_paused:
            self._ssl_reading_paused = False
            self._transport.resume_reading()

    def _set_read_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._incoming_high_water, self._incoming_low_water = add_flowcontrol_defaults(
            high, low, FLOW_CONTROL_HIGH_WATER_SSL_READ
        )

    def _get_read_buffer_size(self) -> int:
        return self._incoming.pending

    # -- errors ------------------------------------------------------------------------

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if self._transport:
            _force_close(self._transport, exc)
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        elif not isinstance(exc, asyncio.CancelledError):
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self._transport,
                "protocol": self,
            })

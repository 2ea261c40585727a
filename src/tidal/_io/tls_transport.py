"""The transport a TLS application protocol sees, and the TLS layer's defaults.

``_SSLProtocolTransport`` is a thin face on ``SSLProtocol``: every call is
forwarded to the protocol that owns the TLS state, as in asyncio; this object
only tracks whether the application closed it.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import warnings
from asyncio.constants import _SendfileMode
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidal._io.tls import SSLProtocol

__all__ = ("add_flowcontrol_defaults",)

_Buffer = bytes | bytearray | memoryview

SSL_HANDSHAKE_TIMEOUT = 60.0
SSL_SHUTDOWN_TIMEOUT = 30.0
FLOW_CONTROL_HIGH_WATER_SSL_READ = 256  # KiB
FLOW_CONTROL_HIGH_WATER_SSL_WRITE = 512  # KiB
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
_PY313 = sys.version_info >= (3, 13)


def _create_transport_context(server_side: bool, server_hostname: str | None) -> ssl.SSLContext:
    if server_side:
        raise ValueError("Server side SSL needs a valid SSLContext")
    # ssl=True on the client side: a secure default context.
    sslcontext = ssl.create_default_context()
    if not server_hostname:
        sslcontext.check_hostname = False
    return sslcontext


def _force_close(transport: Any, exc: BaseException | None) -> None:
    # tidal's and asyncio's socket transports have _force_close(); a foreign
    # transport only promises abort().
    force = getattr(transport, "_force_close", None)
    if force is not None:
        force(exc)
    else:
        transport.abort()


def add_flowcontrol_defaults(high: int | None, low: int | None, kb: int) -> tuple[int, int]:
    """Fill in missing water marks (*kb* KiB high, a quarter of it low) and check them."""
    if high is None:
        hi = kb * 1024 if low is None else 4 * low
    else:
        hi = high
    lo = hi // 4 if low is None else low
    if not hi >= lo >= 0:
        raise ValueError(f"high ({hi!r}) must be >= low ({lo!r}) must be >= 0")
    return hi, lo


class _SSLProtocolTransport(asyncio.Transport):
    """The application-facing half of a TLS connection."""

    # __dict__: instance methods can be set or mock.patch.object'ed, as on asyncio's.
    __slots__ = ("_loop", "_ssl_protocol", "_closed", "__weakref__", "__dict__")

    _start_tls_compatible = True
    _sendfile_compatible = _SendfileMode.FALLBACK

    def __init__(self, loop: Any, ssl_protocol: SSLProtocol) -> None:
        self._loop: Any = loop
        # asyncio drops this reference on a second close(): later calls fail
        # the same way there.
        self._ssl_protocol: Any = ssl_protocol
        self._closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """TLS details ('ssl_object', 'peercert', 'cipher'...) or the socket's."""
        return self._ssl_protocol._get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Deliver further events to *protocol*."""
        self._ssl_protocol._set_app_protocol(protocol)

    def get_protocol(self) -> Any:
        """The application protocol (None once the connection is lost)."""
        return self._ssl_protocol._app_protocol

    def is_closing(self) -> bool:
        """True once close() or abort() was called or the connection was lost."""
        return self._closed

    def close(self) -> None:
        """Flush buffered data, send close_notify, then close the connection."""
        if not self._closed:
            self._closed = True
            self._ssl_protocol._start_shutdown()
        else:
            self._ssl_protocol = None

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            self._closed = True
            _warn("unclosed transport <asyncio._SSLProtocolTransport object>", ResourceWarning)

    def is_reading(self) -> bool:
        """False while the application paused reading."""
        return not self._ssl_protocol._app_reading_paused

    def pause_reading(self) -> None:
        """Stop calling data_received() until resume_reading()."""
        self._ssl_protocol._pause_reading()

    def resume_reading(self) -> None:
        """Deliver received data again."""
        self._ssl_protocol._resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks for pause_writing()/resume_writing() (default 512 KiB high)."""
        self._ssl_protocol._set_write_buffer_limits(high, low)
        self._ssl_protocol._control_app_writing()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)`` write water marks."""
        proto = self._ssl_protocol
        return (proto._outgoing_low_water, proto._outgoing_high_water)

    def get_write_buffer_size(self) -> int:
        """Bytes written by the application and not yet handed to the socket."""
        return int(self._ssl_protocol._get_write_buffer_size())

    def set_read_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set when the socket stops being read (default 256 KiB of undecrypted data)."""
        self._ssl_protocol._set_read_buffer_limits(high, low)
        self._ssl_protocol._control_ssl_reading()

    def get_read_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)`` read water marks."""
        proto = self._ssl_protocol
        return (proto._incoming_low_water, proto._incoming_high_water)

    def get_read_buffer_size(self) -> int:
        """Received bytes not yet decrypted."""
        return int(self._ssl_protocol._get_read_buffer_size())

    @property
    def _protocol_paused(self) -> bool:
        # loop.sendfile()'s fallback reads this to know whether to wait.
        return bool(self._ssl_protocol._app_writing_paused)

    def write(self, data: _Buffer) -> None:
        """Encrypt and send *data*; buffered until the handshake is done."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data: expecting a bytes-like instance, got {type(data).__name__}"
            )
        if not data:
            return
        self._ssl_protocol._write_one(data)

    def writelines(self, list_of_data: Iterable[_Buffer]) -> None:
        """Write each buffer of *list_of_data*."""
        self._ssl_protocol._write_appdata(list_of_data)

    def write_eof(self) -> None:
        """Not supported on TLS: raises NotImplementedError."""
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        """False: TLS cannot half-close."""
        return False

    def abort(self) -> None:
        """Close at once, dropping buffered data; connection_lost(None) follows."""
        if _PY313:
            self._force_close(None)
        else:
            # 3.11/3.12 abort without going through _force_close(), so an
            # instance patch of _force_close() sees only what asyncio's would.
            self._closed = True
            if self._ssl_protocol is not None:
                self._ssl_protocol._abort(None)

    def _force_close(self, exc: BaseException | None) -> None:
        self._closed = True
        if self._ssl_protocol is not None:
            self._ssl_protocol._abort(exc)

    def _test__append_write_backlog(self, data: bytes) -> None:
        # CPython's test_asyncio.test_ssl fills the backlog through this hook.
        proto = self._ssl_protocol
        proto._write_backlog.append(data)
        proto._write_buffer_size += len(data)

"""What every network entry point of the loop shares: transport factories and fd ownership.

The loop remembers which fd belongs to which live transport, so that
``add_reader()`` and friends refuse to steal a transport's fd, with
asyncio's error.  The table maps fd -> weak reference: an abandoned
transport can still be collected (and warn).
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

from tidal._api.sleep import sleep
from tidal._core.loop import BaseEventLoop
from tidal._core.poller import fileobj_to_fd

logger = logging.getLogger("asyncio")

SSL_HANDSHAKE_TIMEOUT = 60.0
SSL_SHUTDOWN_TIMEOUT = 30.0
_CHECK_NEW_TRANSPORT_FD = sys.version_info >= (3, 12)


class NetBase(BaseEventLoop):
    """Transport factories and the fd -> transport table."""

    def __init__(self, selector: Any = None) -> None:
        super().__init__(selector)
        self._transports: dict[int, weakref.ref[Any]] = {}
        # Listening Unix sockets to unlink on close (3.13): sock -> inode.
        self._unix_server_sockets: dict[Any, int] = {}
        # fd -> the object add_reader()/add_writer() first registered it with,
        # so that a socket closed since (fileno() == -1) is still found.
        self._io_fileobjs: dict[int, Any] = {}

    # -- fd ownership -----------------------------------------------------------

    def _fileno_no_transport(self, fd: Any) -> int:
        # The fd number, -1 for a closed socket; RuntimeError if a live transport owns it.
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        ref = self._transports.get(fileno)
        if ref is not None:
            transport = ref()
            if transport is not None and not transport.is_closing():
                raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")
        return fileno

    def _ensure_fd_no_transport(self, fd: Any) -> int:
        fileno = self._fileno_no_transport(fd)
        return fileobj_to_fd(fd) if fileno < 0 else fileno

    # -- add_reader() and friends ---------------------------------------------------
    #
    # asyncio's selector remembers the object each fd was registered with and,
    # when fileno() fails or is -1 (a socket closed while watched), finds the
    # registration by that object.  anyio closes a socket and then removes its
    # reader, for one.

    def _registered_fd(self, fileobj: Any, fileno: int) -> int:
        if fileno >= 0:
            return fileno
        if not isinstance(fileobj, int):
            for fd, owner in self._io_fileobjs.items():
                if owner is fileobj and fd in self._fds:
                    return fd
        return fileobj_to_fd(fileobj)  # raises asyncio's ValueError

    def _add_public_io(self, fileobj: Any, callback: Callable[..., object],
                       args: tuple[Any, ...], writer: bool) -> None:
        fd = self._registered_fd(fileobj, self._fileno_no_transport(fileobj))
        new = fd not in self._fds
        try:
            self._add_io(fd, callback, args, writer)
        except OSError:
            self._forget_fd(fd)
            raise
        if new:
            # The first registration's object stays the fd's, as in asyncio.
            if isinstance(fileobj, int):
                self._io_fileobjs.pop(fd, None)
            else:
                self._io_fileobjs[fd] = fileobj

    def _remove_public_io(self, fileobj: Any, writer: bool) -> bool:
        fileno = self._fileno_no_transport(fileobj)
        if self._closed:
            return False
        fd = self._registered_fd(fileobj, fileno)
        try:
            removed = self._remove_io(fd, writer)
        except OSError:
            self._forget_fd(fd)
            raise
        if fd not in self._fds:
            self._io_fileobjs.pop(fd, None)
        return removed

    def _forget_fd(self, fd: int) -> None:
        # The poller refused to change a closed fd's events: like asyncio's
        # selector, drop the fd's whole registration (and raise the error), so
        # that a new file given the same number starts afresh.
        if self._fds.pop(fd, None) is not None:
            self._poller.unregister(fd)
        self._io_fileobjs.pop(fd, None)

    def add_reader(  # type: ignore[override]
        self, fd: Any, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` whenever *fd* is readable."""
        self._add_public_io(fd, callback, args, False)

    def add_writer(  # type: ignore[override]
        self, fd: Any, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` whenever *fd* is writable."""
        self._add_public_io(fd, callback, args, True)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching *fd* for reading; True if a reader was registered."""
        return self._remove_public_io(fd, False)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching *fd* for writing; True if a writer was registered."""
        return self._remove_public_io(fd, True)

    def close(self) -> None:
        """Close the loop, and forget the objects its fds were registered with."""
        super().close()
        self._io_fileobjs.clear()

    # -- transport factories ------------------------------------------------------

    def _make_socket_transport(self, sock: Any, protocol: Any, waiter: Any = None, *,
                               extra: dict[str, Any] | None = None, server: Any = None) -> Any:
        from tidal._io.tcp import _SelectorSocketTransport

        if _CHECK_NEW_TRANSPORT_FD:
            self._ensure_fd_no_transport(sock)
        return _SelectorSocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(
        self, rawsock: Any, protocol: Any, sslcontext: Any, waiter: Any = None, *,
        server_side: bool = False, server_hostname: str | None = None,
        extra: dict[str, Any] | None = None, server: Any = None,
        ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT,
    ) -> Any:
        from tidal._io.tcp import _SelectorSocketTransport
        from tidal._io.tls import SSLProtocol

        if _CHECK_NEW_TRANSPORT_FD:
            self._ensure_fd_no_transport(rawsock)
        ssl_protocol = SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        _SelectorSocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _make_datagram_transport(self, sock: Any, protocol: Any, address: Any = None,
                                 waiter: Any = None, extra: dict[str, Any] | None = None) -> Any:
        from tidal._io.udp import _SelectorDatagramTransport

        if _CHECK_NEW_TRANSPORT_FD:
            self._ensure_fd_no_transport(sock)
        return _SelectorDatagramTransport(self, sock, protocol, address, waiter, extra)

    async def _create_connection_transport(
        self, sock: Any, protocol_factory: Callable[[], Any], ssl: Any,
        server_hostname: str | None, server_side: bool = False,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = self._make_ssl_transport(
                sock, protocol, sslcontext, waiter, server_side=server_side,
                server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    def _make_server(self, sockets: list[Any], protocol_factory: Any, ssl: Any, backlog: int,
                     ssl_handshake_timeout: float | None,
                     ssl_shutdown_timeout: float | None) -> Any:
        from tidal._io.server import Server

        for sock in sockets:
            sock.setblocking(False)
        return Server(self, sockets, protocol_factory, ssl, backlog, ssl_handshake_timeout,
                      ssl_shutdown_timeout)

    async def _skip_turn(self) -> None:
        # One loop turn, so that registrations made just before have settled.
        await sleep(0)

    def _stop_serving(self, sock: Any) -> None:
        # The Server has already stopped watching the socket.
        path = None
        if sock in self._unix_server_sockets:
            path = sock.getsockname()
        sock.close()
        if path is not None:
            prev_ino = self._unix_server_sockets.pop(sock)
            try:
                if os.stat(path).st_ino == prev_ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

"""Unix domain stream sockets: create_unix_connection, create_unix_server.

The socket file: a stale one (no process listening) is removed before bind,
as asyncio does.  On 3.13 the server also unlinks its own file when it
closes, unless ``cleanup_socket=False`` or the file was replaced meanwhile.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any

from tidal._io.addr import check_ssl_timeouts
from tidal._io.netbase import NetBase, logger

_CLEANUP_ON_CLOSE = sys.version_info >= (3, 13)


def remove_stale_socket(path: Any) -> None:
    """Remove the socket file at *path*, if it is one, before binding there."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        # The directory may only let us create the socket, not stat it.
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)


class UnixMixin(NetBase):
    """create_unix_connection() and create_unix_server()."""

    async def create_unix_connection(
        self, protocol_factory: Callable[[], Any], path: Any = None, *, ssl: Any = None,
        sock: Any = None, server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        """Connect to the Unix socket at *path* (or wrap *sock*); ``(transport, protocol)``."""
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_server(
        self, protocol_factory: Callable[[], Any], path: Any = None, *, sock: Any = None,
        backlog: int = 100, ssl: Any = None, ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> Any:
        """Listen on the Unix socket at *path* (or on *sock*); return a Server."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if path[0] not in (0, "\x00"):  # not an abstract socket (str or bytes)
                remove_stale_socket(path)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    # Name the address: the bare errno text does not.
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        if _CLEANUP_ON_CLOSE and cleanup_socket:
            name = sock.getsockname()
            if name[0] not in (0, "\x00"):
                try:
                    self._unix_server_sockets[sock] = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
        server = self._make_server([sock], protocol_factory, ssl, backlog,
                                   ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await self._skip_turn()
        return server

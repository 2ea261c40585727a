"""Listening sockets: the Server object and the accept path.

asyncio accepts inside a readiness callback and then spawns a Task per
connection that builds the transport.  tidal builds the transport right in
the accept callback: the protocol still learns of the connection through
``connection_made()`` on a later turn, in the same order, without a Task per
connection.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import errno
import logging
import sys
import weakref
from asyncio import AbstractServer, CancelledError
from typing import Any

from tidal._core.handles import Handle
from tidal._io.fdwatch import unwatch, watch
from tidal._io.trsock import TransportSocket

logger = logging.getLogger("asyncio")

#: Seconds before accepting again after running out of fds or memory.
ACCEPT_RETRY_DELAY = 1
_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Server(AbstractServer):
    """What create_server() returns: the listening sockets and their clients."""

    __slots__ = (
        "_loop", "_sockets", "_clients", "_active_count", "_waiters", "_protocol_factory",
        "_backlog", "_ssl_context", "_ssl_handshake_timeout", "_ssl_shutdown_timeout",
        "_serving", "_serving_forever_fut", "_accept_handles",
    )

    def __init__(self, loop: Any, sockets: list[Any], protocol_factory: Any, ssl_context: Any,
                 backlog: int, ssl_handshake_timeout: float | None,
                 ssl_shutdown_timeout: float | None = None) -> None:
        self._loop = loop
        self._sockets: list[Any] | None = sockets
        # 3.13 keeps the clients (weakly: an abandoned transport must still be
        # collectable, and warn); earlier versions only count them.
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._active_count = 0
        self._waiters: list[Any] | None = []
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._serving = False
        self._serving_forever_fut: Any = None
        self._accept_handles: dict[Any, Handle] = {}

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    def _attach(self, transport: Any = None) -> None:
        assert self._sockets is not None
        if _PY313:
            self._clients.add(transport)
        else:
            self._active_count += 1

    def _detach(self, transport: Any = None) -> None:
        if _PY313:
            self._clients.discard(transport)
        else:
            assert self._active_count > 0
            self._active_count -= 1
        if self._active() == 0 and self._sockets is None:
            self._wakeup()

    def _active(self) -> int:
        return len(self._clients) if _PY313 else self._active_count

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving:
            return
        self._serving = True
        assert self._sockets is not None
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._listen(sock)

    def _listen(self, sock: Any) -> None:
        handle = Handle(_accept_connections, (self, sock), self._loop, None)
        self._accept_handles[sock] = handle
        watch(self._loop, sock.fileno(), handle, False)

    def _stop_listening(self, sock: Any) -> None:
        handle = self._accept_handles.pop(sock, None)
        if handle is not None:
            if not unwatch(self._loop, sock.fileno(), False, handle):
                handle.cancel()

    def get_loop(self) -> Any:
        """The loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """True while the server accepts connections."""
        return self._serving

    @property
    def sockets(self) -> tuple[TransportSocket, ...]:
        """The listening sockets (empty once closed)."""
        if self._sockets is None:
            return ()
        return tuple(TransportSocket(s) for s in self._sockets)

    def close(self) -> None:
        """Stop listening and close the listening sockets; clients stay connected."""
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        for sock in sockets:
            self._stop_listening(sock)
            self._loop._stop_serving(sock)
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if self._active() == 0:
            self._wakeup()

    def close_clients(self) -> None:
        """Close every client transport (3.13)."""
        for transport in self._clients.copy():
            transport.close()

    def abort_clients(self) -> None:
        """Abort every client transport (3.13)."""
        for transport in self._clients.copy():
            transport.abort()

    async def start_serving(self) -> None:
        """Start accepting connections (idempotent)."""
        from tidal._api.sleep import sleep

        self._start_serving()
        # One loop turn, so the listening sockets are registered on return.
        await sleep(0)

    async def serve_forever(self) -> None:
        """Accept connections until cancelled; cancelling closes the server."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and (3.12+) its connections are gone."""
        if self._waiters is None or (not _PY312 and self._sockets is None):
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


def _accept_connections(server: Server, sock: Any) -> None:
    # Called when the listening socket is readable: take every connection
    # waiting, up to the backlog, so a burst costs one wakeup.
    loop = server._loop
    for _ in range(server._backlog):
        try:
            conn, addr = sock.accept()
            if loop._debug:
                logger.debug("%r got a new connection from %r: %r", server, addr, conn)
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # nothing more to accept
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise  # the loop logs it
            # Linux keeps reporting the socket as readable: stop watching it
            # for a while instead of spinning.
            loop.call_exception_handler({
                "message": "socket.accept() out of system resource",
                "exception": exc,
                "socket": TransportSocket(sock),
            })
            server._stop_listening(sock)
            loop.call_later(ACCEPT_RETRY_DELAY, _resume_listening, server, sock)
            return
        _make_connection(server, conn, {"peername": addr})


def _resume_listening(server: Server, sock: Any) -> None:
    if server._sockets is not None and sock in server._sockets:
        server._listen(sock)


def _make_connection(server: Server, conn: Any, extra: dict[str, Any]) -> None:
    loop = server._loop
    protocol = None
    transport = None
    try:
        protocol = server._protocol_factory()
        sslcontext = server._ssl_context
        if sslcontext:
            waiter = loop.create_future()
            transport = loop._make_ssl_transport(
                conn, protocol, sslcontext, waiter, server_side=True, extra=extra,
                server=server, ssl_handshake_timeout=server._ssl_handshake_timeout,
                ssl_shutdown_timeout=server._ssl_shutdown_timeout,
            )
            waiter.add_done_callback(
                lambda fut: _handshake_done(loop, fut, protocol, transport)
            )
        else:
            transport = loop._make_socket_transport(conn, protocol, extra=extra, server=server)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if transport is None:
            conn.close()
        _report_creation_error(loop, exc, protocol, transport)


def _handshake_done(loop: Any, fut: Any, protocol: Any, transport: Any) -> None:
    if fut.cancelled():
        transport.close()
        return
    exc = fut.exception()
    if exc is not None:
        transport.close()
        _report_creation_error(loop, exc, protocol, transport)


def _report_creation_error(loop: Any, exc: BaseException, protocol: Any, transport: Any) -> None:
    # asyncio reports these only in debug mode; the connection is dropped.
    if loop._debug:
        context: dict[str, Any] = {
            "message": "Error on transport creation for incoming connection",
            "exception": exc,
        }
        if protocol is not None:
            context["protocol"] = protocol
        if transport is not None:
            context["transport"] = transport
        loop.call_exception_handler(context)

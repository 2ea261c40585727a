"""Transports and servers: create_connection, create_server, connect_accepted_socket, start_tls.

Unix sockets, UDP and sendfile live in their own mixins (``unix.py``,
``datagram.py``, ``sendfile.py``); this class gathers them for ``EventLoop``.
"""

from __future__ import annotations

import collections.abc
import errno
import functools
import itertools
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from tidal._io.addr import (
    HAS_IPV6,
    check_ssl_socket,
    check_ssl_timeouts,
    ensure_resolved,
    interleave_addrinfos,
    set_reuseport,
)
from tidal._io.datagram import DatagramMixin
from tidal._io.happy import staggered_race
from tidal._io.netbase import logger
from tidal._io.sendfile import SendfileMixin
from tidal._io.unix import UnixMixin

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None  # type: ignore[assignment]

_PY313 = sys.version_info >= (3, 13)


def _bind_error_text(exc: OSError) -> str:
    # Up to 3.12 the message quotes strerror, from 3.13 the whole str(exc).
    return str(exc).lower() if _PY313 else str(exc.strerror).lower()


class NetworkMixin(UnixMixin, DatagramMixin, SendfileMixin):  # type: ignore[misc]  # as BaseEventLoop
    """Transports and servers: create_connection, create_server, Unix sockets, UDP, sendfile."""

    async def _connect_sock(self, exceptions: list[list[BaseException]], addr_info: Any,
                            local_addr_infos: Any = None) -> socket.socket:
        """Create, bind and connect one socket, recording failures in *exceptions*."""
        my_exceptions: list[BaseException] = []
        exceptions.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    if lfamily != family:
                        continue  # a local address of another family
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        msg = (f"error while attempting to bind on address {laddr!r}: "
                               f"{_bind_error_text(exc)}")
                        my_exceptions.append(OSError(exc.errno, msg))
                else:  # every bind failed
                    if my_exceptions:
                        raise my_exceptions.pop()
                    raise OSError(f"no matching local address with {family=} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            my_exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            # The traceback keeps this frame: no cycle through the lists.
            exceptions = my_exceptions = None  # type: ignore[assignment]

    async def create_connection(
        self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, *,
        ssl: Any = None, family: int = 0, proto: int = 0, flags: int = 0, sock: Any = None,
        local_addr: Any = None, server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None, interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[Any, Any]:
        """Connect a stream transport to *host*:*port* (or wrap *sock*); ``(transport, proto)``."""
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            # The host is the default name to verify; with no host (a given
            # socket, say) the caller must name the server, possibly ''.
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            check_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1  # happy eyeballs alternates families by default

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            infos = await ensure_resolved(self, (host, port), family=family,
                                          type=socket.SOCK_STREAM, proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            laddr_infos = None
            if local_addr is not None:
                laddr_infos = await ensure_resolved(self, local_addr, family=family,
                                                    type=socket.SOCK_STREAM, proto=proto,
                                                    flags=flags)
                if not laddr_infos:
                    raise OSError("getaddrinfo() returned empty list")
            if interleave:
                infos = interleave_addrinfos(infos, interleave)
            exceptions: list[list[BaseException]] = []
            if happy_eyeballs_delay is None:
                for addrinfo in infos:
                    try:
                        sock = await self._connect_sock(exceptions, addrinfo, laddr_infos)
                        break
                    except OSError:
                        continue
            else:
                sock = (await staggered_race(
                    self,
                    (functools.partial(self._connect_sock, exceptions, addrinfo, laddr_infos)
                     for addrinfo in infos),
                    happy_eyeballs_delay,
                ))[0]
            if sock is None:
                flat: list[Any] = [exc for sub in exceptions for exc in sub]  # OSErrors only
                try:
                    if all_errors:
                        raise ExceptionGroup("create_connection failed", flat)
                    if len(flat) == 1:
                        raise flat[0]
                    model = str(flat[0])
                    if all(str(exc) == model for exc in flat):
                        raise flat[0]
                    raise OSError("Multiple exceptions: {}".format(", ".join(str(e) for e in flat)))
                finally:
                    # The attempts' frames (kept by the tracebacks) hold this
                    # list through their partials: empty it, no cycles.
                    exceptions.clear()
                    flat = exceptions = None  # type: ignore[assignment]
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                # AF_UNIX is accepted too, as long as it is a stream socket.
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")

        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if self._debug:
            # The transport's socket: an SSL transport may have swapped it.
            sock = transport.get_extra_info("socket")
            logger.debug("%r connected to %s:%r: (%r, %r)", sock, host, port, transport, protocol)
        return transport, protocol

    if sys.version_info < (3, 12) and not TYPE_CHECKING:
        # 3.11's create_connection has no all_errors: asyncio's raises TypeError
        # at the call.  A plain function handing back the coroutine above adds
        # no frame to tracebacks; asyncio.iscoroutinefunction() still says yes
        # (inspect's does not).  Hidden from mypy, which would see a redefinition.
        _create_connection_any = create_connection

        def create_connection(
            self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, *,
            ssl: Any = None, family: int = 0, proto: int = 0, flags: int = 0, sock: Any = None,
            local_addr: Any = None, server_hostname: str | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            happy_eyeballs_delay: float | None = None, interleave: int | None = None,
        ) -> Coroutine[Any, Any, tuple[Any, Any]]:
            """Connect a stream transport to *host*:*port* (or wrap *sock*)."""
            return self._create_connection_any(
                protocol_factory, host, port, ssl=ssl, family=family, proto=proto, flags=flags,
                sock=sock, local_addr=local_addr, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay, interleave=interleave,
            )

        from asyncio.coroutines import _is_coroutine

        create_connection._is_coroutine = _is_coroutine
        del _is_coroutine  # not an attribute of the loop class

    async def _create_server_getaddrinfo(self, host: Any, port: Any, family: int,
                                         flags: int) -> list[Any]:
        infos = await ensure_resolved(self, (host, port), family=family,
                                      type=socket.SOCK_STREAM, flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def create_server(
        self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, *,
        family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE, sock: Any = None,
        backlog: int = 100, ssl: Any = None, reuse_address: bool | None = None,
        reuse_port: bool | None = None, keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Any:
        """Listen on *host* (one name or several) and *port*; return a Server."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            check_ssl_socket(sock)

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            if host == "":
                hosts: Any = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = host
            infos = set(itertools.chain.from_iterable(
                await self._resolve_all(hosts, port, family, flags)
            ))
            sockets: list[Any] = []
            completed = False
            try:
                for af, socktype, proto, _canonname, sa in infos:
                    try:
                        sock = socket.socket(af, socktype, proto)
                    except OSError:
                        # Most likely a family the system does not support.
                        if self._debug:
                            logger.warning("create_server() failed to create "
                                           "socket.socket(%r, %r, %r)", af, socktype, proto,
                                           exc_info=True)
                        continue
                    sockets.append(sock)
                    if reuse_address:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                    if reuse_port:
                        set_reuseport(sock)
                    if keep_alive:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                    # Linux lets an IPv6 socket take IPv4 too; the IPv4 socket
                    # bound next to it would then conflict.
                    if HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                    try:
                        sock.bind(sa)
                    except OSError as err:
                        msg = (f"error while attempting to bind on address {sa!r}: "
                               f"{_bind_error_text(err)}")
                        if _PY313 and err.errno == errno.EADDRNOTAVAIL:
                            # The family is most likely disabled (bpo-30945).
                            sockets.pop()
                            sock.close()
                            if self._debug:
                                logger.warning(msg)
                            continue
                        raise OSError(err.errno, msg) from None
                if _PY313 and not sockets:
                    addrs = [info[4] for info in infos]
                    raise OSError(f"could not bind on any address out of {addrs!r}")
                completed = True
            finally:
                if not completed:
                    for s in sockets:
                        s.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]

        server = self._make_server(sockets, protocol_factory, ssl, backlog,
                                   ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await self._skip_turn()
        if self._debug:
            logger.info("%r is serving", server)
        return server

    async def _resolve_all(self, hosts: Any, port: Any, family: int, flags: int) -> list[Any]:
        hosts = list(hosts)
        if len(hosts) == 1:
            return [await self._create_server_getaddrinfo(hosts[0], port, family, flags)]
        # Resolve concurrently, as asyncio's gather() does; the first error
        # (in host order) is raised once all are done, none left unretrieved.
        tasks = [self.create_task(self._create_server_getaddrinfo(h, port, family, flags))
                 for h in hosts]
        results: list[Any] = []
        error: BaseException | None = None
        for task in tasks:
            try:
                results.append(await task)
            except Exception as exc:
                if error is None:
                    error = exc
        if error is not None:
            raise error
        return results

    async def connect_accepted_socket(
        self, protocol_factory: Callable[[], Any], sock: Any, *, ssl: Any = None,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        """Wrap an already accepted connection in a transport; ``(transport, protocol)``."""
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            check_ssl_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, "", server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if self._debug:
            sock = transport.get_extra_info("socket")
            logger.debug("%r handled: (%r, %r)", sock, transport, protocol)
        return transport, protocol

    async def start_tls(
        self, transport: Any, protocol: Any, sslcontext: Any, *, server_side: bool = False,
        server_hostname: str | None = None, ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> Any:
        """Upgrade *transport* to TLS; return the transport *protocol* must use from now on."""
        if _ssl is None:
            raise RuntimeError("Python ssl module is not available")
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        from tidal._io.tls import SSLProtocol

        waiter = self.create_future()
        ssl_protocol = SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False,
        )
        # Pause first, so the TLS protocol sees no data before connection_made().
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        return ssl_protocol._app_transport

"""create_datagram_endpoint(): UDP (and Unix datagram) sockets as transports."""

# AbstractEventLoop's stub still lists reuse_address, which asyncio's loop
# dropped in 3.11.  Not an ignore on the def line: a traceback prints a
# coroutine's first line when it is cancelled before it starts.
# mypy: disable-error-code="override"

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

from tidal._io.addr import ensure_resolved, set_reuseport
from tidal._io.netbase import NetBase, logger
from tidal._io.unix import remove_stale_socket

_PY313 = sys.version_info >= (3, 13)


class DatagramMixin(NetBase):
    """create_datagram_endpoint()."""

    async def create_datagram_endpoint(
        self, protocol_factory: Callable[[], Any], local_addr: Any = None,
        remote_addr: Any = None, *, family: int = 0, proto: int = 0, flags: int = 0,
        reuse_port: bool | None = None, allow_broadcast: bool | None = None, sock: Any = None,
    ) -> tuple[Any, Any]:
        """A datagram endpoint bound to *local_addr* and/or aimed at *remote_addr*."""
        r_addr: Any = None
        if sock is not None:
            if _PY313:
                if sock.type == socket.SOCK_STREAM:
                    raise ValueError(f"A datagram socket was expected, got {sock!r}")
            elif sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if (local_addr or remote_addr or family or proto or flags
                    or reuse_port or allow_broadcast):
                opts = dict(local_addr=local_addr, remote_addr=remote_addr, family=family,
                            proto=proto, flags=flags, reuse_port=reuse_port,
                            allow_broadcast=allow_broadcast)
                problems = ", ".join(f"{k}={v}" for k, v in opts.items() if v)
                raise ValueError(
                    f"socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})"
                )
            sock.setblocking(False)
        else:
            sock, r_addr = await self._open_datagram_socket(
                local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast
            )

        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        if self._debug:
            if local_addr:
                logger.info("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                            local_addr, remote_addr, transport, protocol)
            else:
                logger.debug("Datagram endpoint remote_addr=%r created: (%r, %r)",
                             remote_addr, transport, protocol)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _open_datagram_socket(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int,
        reuse_port: bool | None, allow_broadcast: bool | None,
    ) -> tuple[socket.socket, Any]:
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            addr_pairs_info: Any = (((family, proto), (None, None)),)
        elif hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr and local_addr[0] not in (0, "\x00"):
                remove_stale_socket(local_addr)
            addr_pairs_info = (((family, proto), (local_addr, remote_addr)),)
        else:
            # Group the resolved addresses by (family, proto), in order.
            addr_infos: dict[tuple[int, int], list[Any]] = {}
            for idx, addr in ((0, local_addr), (1, remote_addr)):
                if addr is None:
                    continue
                if not (isinstance(addr, tuple) and len(addr) == 2):
                    raise TypeError("2-tuple is expected")
                infos = await ensure_resolved(self, addr, family=family,
                                              type=socket.SOCK_DGRAM, proto=proto, flags=flags)
                if not infos:
                    raise OSError("getaddrinfo() returned empty list")
                for fam, _, pro, _, address in infos:
                    addr_infos.setdefault((fam, pro), [None, None])[idx] = address
            # Each given address needs an entry in the chosen (family, proto).
            addr_pairs_info = [
                (key, pair) for key, pair in addr_infos.items()
                if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
            ]
            if not addr_pairs_info:
                raise ValueError("can not get address information")

        exceptions: list[OSError] = []
        for (fam, pro), (local_address, remote_address) in addr_pairs_info:
            sock = None
            r_addr = None
            try:
                sock = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                if reuse_port:
                    set_reuseport(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                if remote_addr:
                    if not allow_broadcast:
                        await self.sock_connect(sock, remote_address)
                    r_addr = remote_address
            except OSError as exc:
                if sock is not None:
                    sock.close()
                exceptions.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
            else:
                return sock, r_addr
        raise exceptions[0]

"""Address and socket-option helpers shared by the socket and network layers."""

from __future__ import annotations

import itertools
import socket
from typing import Any

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

HAS_IPV6 = hasattr(socket, "AF_INET6")
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6) if HAS_IPV6 else (socket.AF_INET,)

AddrInfo = tuple[int, int, int, str, Any]


def check_ssl_socket(sock: Any) -> None:
    """Refuse an ``ssl.SSLSocket``: the loop needs the raw socket."""
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def check_ssl_timeouts(ssl: Any, handshake_timeout: Any, shutdown_timeout: Any) -> None:
    """The TLS timeouts make sense only with *ssl*: asyncio's errors otherwise."""
    if handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def check_nonblocking(loop: Any, sock: Any) -> None:
    """In debug mode, refuse a blocking socket, as asyncio does."""
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


#: Stream protocols TCP_NODELAY applies to; 0 is the family's default, TCP.
_NODELAY_PROTOS = (0, socket.IPPROTO_TCP)


def set_nodelay(sock: socket.socket) -> None:
    """Disable Nagle on TCP sockets: small writes leave at once.

    asyncio does it only when ``sock.proto == IPPROTO_TCP``; a socket made as
    ``socket.socket(AF_INET, SOCK_STREAM)`` has proto 0, never gets it, and a
    response written in two pieces on it waits ~40 ms for a delayed ACK.
    tidal, like uvloop, sets it on every TCP stream socket (a deliberate
    difference, listed in the README).
    """
    if (
        sock.family in _TCP_FAMILIES
        and sock.type == socket.SOCK_STREAM
        and sock.proto in _NODELAY_PROTOS
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_reuseport(sock: socket.socket) -> None:
    """Set SO_REUSEPORT, with asyncio's errors where it is missing."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from None


def ipaddr_info(
    host: Any, port: Any, family: int, type: int, proto: int,
    flowinfo: int = 0, scopeid: int = 0,
) -> AddrInfo | None:
    """An addrinfo tuple when *host* is already a numeric IP; None if it must be resolved."""
    if proto not in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP) or host is None:
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None or port == b"" or port == "":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name such as "http": let getaddrinfo map it
    if family == socket.AF_UNSPEC:
        families: tuple[int, ...] = _TCP_FAMILIES
    else:
        families = (family,)
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        return None  # inet_pton rejects a zone index such as '::1%lo0'
    for af in families:
        try:
            socket.inet_pton(af, host)
        except OSError:
            continue
        if HAS_IPV6 and af == socket.AF_INET6:
            return af, type, proto, "", (host, port, flowinfo, scopeid)
        return af, type, proto, "", (host, port)
    return None


def interleave_addrinfos(infos: list[AddrInfo], first_family_count: int = 1) -> list[AddrInfo]:
    """Reorder *infos* so families alternate (RFC 8305), the first family leading."""
    by_family: dict[int, list[AddrInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    reordered: list[AddrInfo] = []
    if first_family_count > 1:
        reordered.extend(groups[0][: first_family_count - 1])
        del groups[0][: first_family_count - 1]
    reordered.extend(
        a for a in itertools.chain.from_iterable(itertools.zip_longest(*groups)) if a is not None
    )
    return reordered


async def ensure_resolved(
    loop: Any, address: Any, *, family: int = 0, type: int = socket.SOCK_STREAM,
    proto: int = 0, flags: int = 0,
) -> list[AddrInfo]:
    """addrinfo entries for *address*, skipping the resolver for numeric hosts."""
    host, port = address[:2]
    info = ipaddr_info(host, port, family, type, proto, *address[2:])
    if info is not None:
        return [info]
    result: list[AddrInfo] = await loop.getaddrinfo(
        host, port, family=family, type=type, proto=proto, flags=flags
    )
    return result

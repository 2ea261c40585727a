"""TransportSocket: the socket a transport hands out, with disruptive calls refused."""

from __future__ import annotations

import socket
from asyncio import trsock as _aio_trsock
from typing import Any

_AIO_TRANSPORT_SOCKET = _aio_trsock.TransportSocket


class TransportSocket:
    """A socket-like view of a transport's socket.

    ``transport.get_extra_info('socket')`` and ``Server.sockets`` return these:
    options and addresses can be read and set, but the loop keeps control of
    the socket's lifetime and blocking mode.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    # isinstance(s, asyncio.trsock.TransportSocket) holds, as code (and
    # CPython's test_events) checks on what get_extra_info('socket') and
    # Server.sockets return: isinstance() falls back to __class__ when type()
    # does not match.  type(s) stays this class; nothing of asyncio's runs.
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return _AIO_TRANSPORT_SOCKET

    @property
    def family(self) -> Any:
        """The socket family."""
        return self._sock.family

    @property
    def type(self) -> Any:
        """The socket type."""
        return self._sock.type

    @property
    def proto(self) -> int:
        """The socket protocol."""
        return self._sock.proto

    def __repr__(self) -> str:
        # The same text as asyncio's, so logs read the same on both loops.
        text = (
            f"<asyncio.TransportSocket fd={self.fileno()}, "
            f"family={self.family!s}, type={self.type!s}, "
            f"proto={self.proto}"
        )
        if self.fileno() != -1:
            try:
                laddr = self.getsockname()
                if laddr:
                    text = f"{text}, laddr={laddr}"
            except OSError:
                pass
            try:
                raddr = self.getpeername()
                if raddr:
                    text = f"{text}, raddr={raddr}"
            except OSError:
                pass
        return f"{text}>"

    def __getstate__(self) -> Any:
        raise TypeError("Cannot serialize asyncio.TransportSocket object")

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self._sock.fileno()

    def dup(self) -> socket.socket:
        """A new, independent socket object on a duplicate fd."""
        return self._sock.dup()

    def get_inheritable(self) -> bool:
        """Whether child processes inherit the fd."""
        return self._sock.get_inheritable()

    def shutdown(self, how: int) -> None:
        """Shut down one or both directions (there is no transport API for it)."""
        self._sock.shutdown(how)

    def getsockopt(self, *args: Any, **kwargs: Any) -> Any:
        """socket.getsockopt()."""
        return self._sock.getsockopt(*args, **kwargs)

    def setsockopt(self, *args: Any, **kwargs: Any) -> None:
        """socket.setsockopt()."""
        self._sock.setsockopt(*args, **kwargs)

    def getpeername(self) -> Any:
        """The remote address."""
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        """The local address."""
        return self._sock.getsockname()

    def getsockbyname(self) -> Any:
        """Present for parity with asyncio, which forwards it to the socket."""
        sock: Any = self._sock  # socket.socket has no such method: asyncio's call fails too
        return sock.getsockbyname()

    def settimeout(self, value: float | None) -> None:
        """Only a zero timeout is allowed: the loop needs non-blocking sockets."""
        if value == 0:
            return
        raise ValueError("settimeout(): only 0 timeout is allowed on transport sockets")

    def gettimeout(self) -> float:
        """Always 0: transport sockets are non-blocking."""
        return 0

    def setblocking(self, flag: bool) -> None:
        """Only non-blocking mode is allowed."""
        if not flag:
            return
        raise ValueError("setblocking(): transport sockets cannot be blocking")

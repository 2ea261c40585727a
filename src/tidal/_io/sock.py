"""Low-level socket operations on the loop: sock_recv, sock_sendall, sock_connect, DNS."""

from __future__ import annotations

from tidal._core.loop import BaseEventLoop


class SocketMixin(BaseEventLoop):
    """Low-level socket operations on the loop: sock_recv, sock_sendall, sock_connect, DNS."""

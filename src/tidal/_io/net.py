"""Transports and servers: create_connection, create_server, Unix sockets, UDP, sendfile."""

from __future__ import annotations

from tidal._core.loop import BaseEventLoop


class NetworkMixin(BaseEventLoop):
    """Transports and servers: create_connection, create_server, Unix sockets, UDP, sendfile."""

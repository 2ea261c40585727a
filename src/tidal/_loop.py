"""The complete tidal event loop: the core plus the I/O layers."""

from __future__ import annotations

from tidal._io.net import NetworkMixin
from tidal._io.pipes import PipeMixin
from tidal._io.signals import SignalMixin
from tidal._io.sock import SocketMixin
from tidal._io.subprocess import SubprocessMixin


class EventLoop(NetworkMixin, SocketMixin, SubprocessMixin, PipeMixin, SignalMixin):  # type: ignore[misc]
    """tidal's event loop: asyncio's loop API on tidal's own implementation."""


__all__ = ("EventLoop",)

"""The complete tidal event loop: the core plus the I/O layers."""

from __future__ import annotations

from tidal._core.loop import BaseEventLoop


class EventLoop(BaseEventLoop):
    """tidal's event loop: asyncio's loop API on tidal's own implementation."""


__all__ = ("EventLoop",)

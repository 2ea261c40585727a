"""Pipe transports: connect_read_pipe and connect_write_pipe."""

from __future__ import annotations

from tidal._core.loop import BaseEventLoop


class PipeMixin(BaseEventLoop):
    """Pipe transports: connect_read_pipe and connect_write_pipe."""

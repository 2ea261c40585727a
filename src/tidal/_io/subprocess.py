"""Subprocess transports: subprocess_exec and subprocess_shell."""

from __future__ import annotations

from tidal._core.loop import BaseEventLoop


class SubprocessMixin(BaseEventLoop):
    """Subprocess transports: subprocess_exec and subprocess_shell."""

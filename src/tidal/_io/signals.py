"""Unix signal handlers on the loop: add_signal_handler, remove_signal_handler."""

from __future__ import annotations

from tidal._core.loop import BaseEventLoop


class SignalMixin(BaseEventLoop):
    """Unix signal handlers on the loop: add_signal_handler, remove_signal_handler."""

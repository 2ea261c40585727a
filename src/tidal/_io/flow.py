"""Write flow control shared by tidal's write transports.

A transport buffers what the kernel would not take; above the high-water mark
it asks its protocol to ``pause_writing()``, and at or below the low-water mark
to ``resume_writing()``, exactly once each way, as asyncio's transports do.
The transport supplies ``get_write_buffer_size()`` and the slots below.

Not compiled: the interpreted pipe transport mixes it in with other bases,
and it runs only when a water mark is crossed.
"""

from __future__ import annotations

from typing import Any


class WriteFlowControl:
    """Water marks and pause/resume_writing calls for a buffered write transport."""

    __slots__ = ()

    # Provided by the transport's own slots (hence the ignore[misc] on stores:
    # mypy looks for them in this class's empty __slots__).
    _loop: Any
    _protocol: Any
    _protocol_paused: bool
    _high_water: int
    _low_water: int

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        raise NotImplementedError

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The ``(low, high)`` water marks."""
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Pause the protocol above *high* buffered bytes, resume it at *low*."""
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high  # type: ignore[misc]
        self._low_water = low  # type: ignore[misc]
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self.get_write_buffer_size() <= self._high_water or self._protocol_paused:
            return
        self._protocol_paused = True  # type: ignore[misc]
        self._tell_protocol("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
            self._protocol_paused = False  # type: ignore[misc]
            self._tell_protocol("resume_writing")

    def _tell_protocol(self, method: str) -> None:
        # A failing pause_writing()/resume_writing() is reported, not raised
        # into write() or the loop.
        try:
            getattr(self._protocol, method)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"protocol.{method}() failed",
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })

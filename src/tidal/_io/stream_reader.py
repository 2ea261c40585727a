"""StreamReader: a byte buffer fed by a protocol, read by one task at a time.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).

Not compiled (docs/design.md, "Compiled build"): a compiled coroutine is no
``types.CoroutineType``, and compiling only the synchronous half made the
interpreted coroutines' attribute reads slower than it saved.
"""

from __future__ import annotations

import sys
from asyncio import IncompleteReadError, LimitOverrunError
from typing import Any

from tidal._core.format import extract_stack

_DEFAULT_LIMIT = 2**16  # 64 KiB
_PY313 = sys.version_info >= (3, 13)


class StreamReader:
    """Buffered bytes from a transport: read(), readline(), readexactly(), readuntil()."""

    __slots__ = (
        "_limit", "_loop", "_buffer", "_eof", "_waiter", "_exception", "_transport",
        "_paused", "_source_traceback", "__weakref__",
        "__dict__",  # instances take patched methods, as asyncio's do
    )

    def __init__(self, limit: int = _DEFAULT_LIMIT, loop: Any = None) -> None:
        # The limit bounds a line (a safeguard) and, doubled, the buffer.
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._limit = limit
        if loop is None:
            from tidal._core.events import get_event_loop

            loop = get_event_loop()
        self._loop: Any = loop
        self._buffer = bytearray()
        self._eof = False
        self._waiter: Any = None
        self._exception: BaseException | None = None
        self._transport: Any = None
        self._paused = False
        self._source_traceback: Any = (
            extract_stack(sys._getframe(1)) if loop.get_debug() else None
        )

    def __repr__(self) -> str:
        info = ["StreamReader"]
        if self._buffer:
            info.append(f"{len(self._buffer)} bytes")
        if self._eof:
            info.append("eof")
        if self._limit != _DEFAULT_LIMIT:
            info.append(f"limit={self._limit}")
        if self._waiter:
            info.append(f"waiter={self._waiter!r}")
        if self._exception:
            info.append(f"exception={self._exception!r}")
        if self._transport:
            info.append(f"transport={self._transport!r}")
        if self._paused:
            info.append("paused")
        return "<{}>".format(" ".join(info))

    def exception(self) -> BaseException | None:
        """The exception set by set_exception(), or None."""
        return self._exception

    def set_exception(self, exc: BaseException) -> None:
        """Make every further read raise *exc*; wake a waiting reader with it."""
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_exception(exc)

    def _wakeup_waiter(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)

    def set_transport(self, transport: Any) -> None:
        """Attach the transport (once) so reading can be paused when the buffer fills."""
        assert self._transport is None, "Transport already set"
        self._transport = transport

    def _maybe_resume_transport(self) -> None:
        if self._paused and len(self._buffer) <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    def feed_eof(self) -> None:
        """Mark the end of the stream."""
        self._eof = True
        self._wakeup_waiter()

    def at_eof(self) -> bool:
        """True once EOF was fed and the buffer is empty."""
        return self._eof and not self._buffer

    def feed_data(self, data: Any) -> None:
        """Append *data*; pause the transport past twice the limit."""
        assert not self._eof, "feed_data after feed_eof"
        if not data:
            return
        buffer = self._buffer
        buffer += data
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)
        if (
            len(buffer) > 2 * self._limit
            and self._transport is not None
            and not self._paused
        ):
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                # This transport cannot pause: buffer everything, and stop
                # asking.
                self._transport = None
            else:
                self._paused = True

    def _new_waiter(self, func_name: str) -> Any:
        # Two readers at once could not know which gets the next data.
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is "
                f"already waiting for incoming data"
            )
        assert not self._eof, "_wait_for_data after EOF"
        # Waiting while paused would deadlock (readexactly(n) with n > limit).
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        waiter = self._waiter = self._loop.create_future()
        return waiter

    async def _wait_for_data(self, func_name: str) -> None:
        """Wait until feed_data() or feed_eof() is called (resuming a paused transport)."""
        waiter = self._new_waiter(func_name)
        try:
            await waiter
        finally:
            self._waiter = None

    async def readline(self) -> bytes:
        """Read up to and including b'\\n'; at EOF, whatever is left (maybe b'').

        A line longer than the limit raises ValueError; the line (or, without
        a newline, the whole buffer) is dropped.
        """
        try:
            return await self.readuntil(b"\n")
        except IncompleteReadError as e:
            return e.partial
        except LimitOverrunError as e:
            if self._buffer.startswith(b"\n", e.consumed):
                del self._buffer[: e.consumed + 1]
            else:
                self._buffer.clear()
            self._maybe_resume_transport()
            raise ValueError(e.args[0])  # chained implicitly, as asyncio does

    async def readuntil(self, separator: Any = b"\n") -> bytes:
        """Read up to and including *separator* (3.13: or the first of a tuple of them).

        At EOF without a separator, IncompleteReadError with what was left.
        Past the limit, LimitOverrunError, leaving the data in the buffer.
        """
        if _PY313 and isinstance(separator, tuple):
            separators = sorted(separator, key=len)  # the shortest match wins
        else:
            separators = [separator]
        if not separators:
            raise ValueError("Separator should contain at least one element")
        min_seplen = len(separators[0])
        max_seplen = len(separators[-1])
        if min_seplen == 0:
            raise ValueError("Separator should be at least one-byte string")
        if self._exception is not None:
            raise self._exception

        buffer = self._buffer
        # Bytes known to hold no complete separator: not searched again.
        offset = 0
        while True:
            buflen = len(buffer)
            if buflen - offset >= min_seplen:
                match_start = -1
                match_end = -1
                for sep in separators:
                    isep = buffer.find(sep, offset)
                    if isep != -1:
                        end = isep + len(sep)
                        if match_end == -1 or end < match_end:
                            match_end = end
                            match_start = isep
                if match_end != -1:
                    break
                # A separator may straddle the end of what has arrived.
                offset = max(0, buflen + 1 - max_seplen)
                if offset > self._limit:
                    raise LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit", offset
                    )
            # The last chunk may have completed a separator: EOF is checked
            # only after the search.
            if self._eof:
                chunk = bytes(buffer)
                buffer.clear()
                raise IncompleteReadError(chunk, None)
            waiter = self._new_waiter("readuntil")
            try:
                await waiter
            finally:
                self._waiter = None

        if match_start > self._limit:
            raise LimitOverrunError("Separator is found, but chunk is longer than limit",
                                    match_start)
        if match_end == len(buffer):
            chunk = bytes(buffer)
            buffer.clear()
        else:
            chunk = bytes(memoryview(buffer)[:match_end])
            del buffer[:match_end]
        self._maybe_resume_transport()
        return chunk

    async def read(self, n: int = -1) -> bytes:
        """Up to *n* bytes as soon as any are there; all until EOF if *n* < 0."""
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            # Read limit-sized blocks: waiting for EOF with everything in the
            # buffer would deadlock once the transport pauses.
            blocks = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    break
                blocks.append(block)
            return b"".join(blocks)
        buffer = self._buffer
        if not buffer and not self._eof:
            waiter = self._new_waiter("read")
            try:
                await waiter
            finally:
                self._waiter = None
        if len(buffer) <= n:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(memoryview(buffer)[:n])
            del buffer[:n]
        if self._paused:
            self._maybe_resume_transport()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly *n* bytes; IncompleteReadError if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        buffer = self._buffer
        while len(buffer) < n:
            if self._eof:
                incomplete = bytes(buffer)
                buffer.clear()
                raise IncompleteReadError(incomplete, n)
            waiter = self._new_waiter("readexactly")
            try:
                await waiter
            finally:
                self._waiter = None
        if len(buffer) == n:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(memoryview(buffer)[:n])
            del buffer[:n]
        if self._paused:
            self._maybe_resume_transport()
        return data

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> bytes:
        val = await self.readline()
        if val == b"":
            raise StopAsyncIteration
        return val

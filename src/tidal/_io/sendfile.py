"""loop.sendfile(): a file over a transport, with os.sendfile() or by reading and writing."""

from __future__ import annotations

import asyncio
from asyncio import SendfileNotAvailableError
from asyncio.constants import _SendfileMode
from typing import Any

from tidal._io.netbase import NetBase

_FALLBACK_BLOCKSIZE = 16384


class _SendfileFallbackProtocol(asyncio.Protocol):
    """Stands in for the transport's protocol while the fallback writes the file.

    Reading is paused; pause_writing()/resume_writing() drive ``drain()``.
    ``restore()`` puts the original protocol back.
    """

    def __init__(self, transp: Any) -> None:
        if not hasattr(transp, "_protocol_paused"):
            raise TypeError("transport should be _FlowControlMixin instance")
        self._transport = transp
        self._proto = transp.get_protocol()
        self._should_resume_reading = transp.is_reading()
        self._should_resume_writing = transp._protocol_paused
        transp.pause_reading()
        transp.set_protocol(self)
        self._write_ready_fut: Any = (
            transp._loop.create_future() if self._should_resume_writing else None
        )

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark."""
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        fut = self._write_ready_fut
        if fut is None:
            return
        await fut

    def connection_made(self, transport: Any) -> None:
        """Never expected: the connection already exists."""
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc: BaseException | None) -> None:
        """Fail a pending drain() and forward to the original protocol."""
        fut = self._write_ready_fut
        if fut is not None:
            # The peer left before the whole file was sent.
            fut.set_exception(
                ConnectionError("Connection is closed by peer") if exc is None else exc
            )
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        """The transport's buffer is full: make drain() wait."""
        if self._write_ready_fut is not None:
            return
        self._write_ready_fut = self._transport._loop.create_future()

    def resume_writing(self) -> None:
        """The buffer drained: release drain()."""
        fut = self._write_ready_fut
        if fut is None:
            return
        fut.set_result(False)
        self._write_ready_fut = None

    def data_received(self, data: bytes) -> None:
        """Never expected: reading is paused."""
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        """Never expected: reading is paused."""
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self) -> None:
        """Give the transport back to its protocol, in the state it was found."""
        self._transport.set_protocol(self._proto)
        if self._should_resume_reading:
            self._transport.resume_reading()
        if self._write_ready_fut is not None:
            self._write_ready_fut.cancel()
        if self._should_resume_writing:
            self._proto.resume_writing()


class SendfileMixin(NetBase):
    """loop.sendfile()."""

    async def sendfile(self, transport: Any, file: Any, offset: int = 0,
                       count: int | None = None, *, fallback: bool = True) -> int:
        """Send *file* over *transport*; return the number of bytes sent."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED)
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(
                f"fallback is disabled and native sendfile is not "
                f"supported for transport {transport!r}"
            )
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transp: Any, file: Any, offset: int,
                               count: int | None) -> int:
        if not hasattr(transp, "_make_empty_waiter"):
            raise SendfileNotAvailableError("sendfile syscall is not supported")
        fd = transp._sock_fd
        # The socket operations below must not see the fd as the transport's.
        ref = self._transports.pop(fd, None)
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await self.sock_sendfile(transp._sock, file, offset, count, fallback=False)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            if ref is not None:
                self._transports[fd] = ref

    async def _sendfile_fallback(self, transp: Any, file: Any, offset: int,
                                 count: int | None) -> int:
        if offset:
            file.seek(offset)
        blocksize = min(count, _FALLBACK_BLOCKSIZE) if count else _FALLBACK_BLOCKSIZE
        buf = bytearray(blocksize)
        total_sent = 0
        proto = _SendfileFallbackProtocol(transp)
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        return total_sent
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    return total_sent  # EOF
                await proto.drain()
                transp.write(view[:read])
                total_sent += read
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
            await proto.restore()

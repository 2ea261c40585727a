"""Pipe transports on the loop: connect_read_pipe and connect_write_pipe."""

from __future__ import annotations

import logging
from asyncio import BaseProtocol, ReadTransport, WriteTransport
from collections.abc import Callable
from typing import Any, TypeVar

from tidal._core.loop import BaseEventLoop
from tidal._io.pipe_transports import _UnixReadPipeTransport, _UnixWritePipeTransport

logger = logging.getLogger("asyncio")

_P = TypeVar("_P", bound=BaseProtocol)


class PipeMixin(BaseEventLoop):
    """Pipe transports: connect_read_pipe and connect_write_pipe."""

    def _make_read_pipe_transport(
        self, pipe: Any, protocol: BaseProtocol, waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> _UnixReadPipeTransport:
        return _UnixReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(
        self, pipe: Any, protocol: BaseProtocol, waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> _UnixWritePipeTransport:
        return _UnixWritePipeTransport(self, pipe, protocol, waiter, extra)

    async def connect_read_pipe(
        self, protocol_factory: Callable[[], _P], pipe: Any
    ) -> tuple[ReadTransport, _P]:
        """Read from *pipe* (a file object) into a protocol from *protocol_factory*.

        The pipe is put in non-blocking mode; the transport owns it and
        closes it once connection_lost() has been called.
        """
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_read_pipe_transport(pipe, protocol, waiter)
        await self._pipe_connected(transport, waiter, "Read", pipe, protocol)
        return transport, protocol

    async def connect_write_pipe(
        self, protocol_factory: Callable[[], _P], pipe: Any
    ) -> tuple[WriteTransport, _P]:
        """Write to *pipe* (a file object) through a transport; return it and the protocol.

        The pipe is put in non-blocking mode; the transport owns it and
        closes it once connection_lost() has been called.
        """
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_write_pipe_transport(pipe, protocol, waiter)
        await self._pipe_connected(transport, waiter, "Write", pipe, protocol)
        return transport, protocol

    async def _pipe_connected(
        self, transport: Any, waiter: Any, side: str, pipe: Any, protocol: BaseProtocol
    ) -> None:
        # The waiter fires once connection_made() has run.
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug("%s pipe %r connected: (%r, %r)", side, pipe.fileno(), transport, protocol)

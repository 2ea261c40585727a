"""Streams: open_connection/start_server and StreamReader/StreamWriter over transports.

A read that finds the buffer empty parks the task on a future from
``create_future()``; ``feed_data()`` completes it, which puts the task
straight back on the ready queue.  The hot calls (``data_received``,
``read``, ``drain``) avoid the property and coroutine layers asyncio has in
between, with the same observable behaviour.

Not compiled (docs/design.md, "Compiled build"): drain(), wait_closed() and
the protocol's _drain_helper() must stay Python coroutines.

PYTEST_DONT_REWRITE: its asserts stay asyncio's, messages included, under pytest too
(tidal's pytest plugin marks the installed package for assertion rewriting).
"""

from __future__ import annotations

import logging
import socket
import sys
import warnings
import weakref
from asyncio import Protocol
from collections import deque
from collections.abc import Callable
from typing import Any

from tidal._api.sleep import sleep
from tidal._core.tasks import iscoroutine
from tidal._io.stream_reader import _DEFAULT_LIMIT, StreamReader

__all__: tuple[str, ...] = (
    "StreamReader", "StreamWriter", "StreamReaderProtocol", "open_connection", "start_server",
)
if hasattr(socket, "AF_UNIX"):
    __all__ += ("open_unix_connection", "start_unix_server")

_PY313 = sys.version_info >= (3, 13)

logger = logging.getLogger("asyncio")


def _running_loop() -> Any:
    from tidal._core.events import get_running_loop

    return get_running_loop()


def _default_loop() -> Any:
    from tidal._core.events import get_event_loop

    return get_event_loop()


async def open_connection(host: Any = None, port: Any = None, *, limit: int = _DEFAULT_LIMIT,
                          **kwds: Any) -> tuple[StreamReader, StreamWriter]:
    """Connect to *host*:*port*; return a ``(reader, writer)`` pair.

    Takes the keyword arguments of ``loop.create_connection()``, plus
    *limit*, the reader's buffer limit.
    """
    loop = _running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(client_connected_cb: Callable[..., Any], host: Any = None,
                       port: Any = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any) -> Any:
    """Serve on *host*:*port*, calling ``client_connected_cb(reader, writer)`` per client.

    The callback may be a coroutine function: its coroutine becomes a Task.
    Takes the keyword arguments of ``loop.create_server()``; returns the Server.
    """
    loop = _running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwds)


async def open_unix_connection(path: Any = None, *, limit: int = _DEFAULT_LIMIT,
                               **kwds: Any) -> tuple[StreamReader, StreamWriter]:
    """open_connection() for a Unix domain socket at *path*."""
    loop = _running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_unix_server(client_connected_cb: Callable[..., Any], path: Any = None, *,
                            limit: int = _DEFAULT_LIMIT, **kwds: Any) -> Any:
    """start_server() on a Unix domain socket at *path*."""
    loop = _running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await loop.create_unix_server(factory, path, **kwds)


class FlowControlMixin(Protocol):
    """pause_writing()/resume_writing() bookkeeping behind ``StreamWriter.drain()``."""

    def __init__(self, loop: Any = None) -> None:
        self._loop = _default_loop() if loop is None else loop
        self._paused = False
        self._drain_waiters: deque[Any] = deque()
        self._connection_lost = False

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark."""
        assert not self._paused
        self._paused = True
        if self._loop.get_debug():
            logger.debug("%r pauses writing", self)

    def resume_writing(self) -> None:
        """The buffer drained below the low-water mark: release drain()."""
        assert self._paused
        self._paused = False
        if self._loop.get_debug():
            logger.debug("%r resumes writing", self)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Release drain() waiters, with *exc* if there is one."""
        self._connection_lost = True
        if not self._paused:
            return
        for waiter in self._drain_waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        if not self._paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            self._drain_waiters.remove(waiter)

    def _get_close_waiter(self, stream: Any) -> Any:
        raise NotImplementedError


class StreamReaderProtocol(FlowControlMixin, Protocol):
    """Feeds a StreamReader from a transport; starts a client callback on servers."""

    _source_traceback: Any = None

    def __init__(self, stream_reader: StreamReader | None,
                 client_connected_cb: Callable[..., Any] | None = None,
                 loop: Any = None) -> None:
        super().__init__(loop=loop)
        self._stream_reader_wr: Any
        if stream_reader is not None:
            self._stream_reader_wr = weakref.ref(stream_reader)
            self._source_traceback = stream_reader._source_traceback
        else:
            self._stream_reader_wr = None
        if client_connected_cb is not None:
            # A server-side stream: keep the reader alive until the
            # callback has it.
            self._strong_reader: Any = stream_reader
        self._reject_connection = False
        if not _PY313:
            self._stream_writer: Any = None
        self._task: Any = None
        self._transport: Any = None
        self._client_connected_cb = client_connected_cb
        self._over_ssl = False
        self._closed = self._loop.create_future()

    @property
    def _stream_reader(self) -> StreamReader | None:
        if self._stream_reader_wr is None:
            return None
        reader: StreamReader | None = self._stream_reader_wr()
        return reader

    def _replace_transport(self, transport: Any) -> None:
        self._transport = transport
        self._over_ssl = transport.get_extra_info("sslcontext") is not None

    def _replace_writer(self, writer: StreamWriter) -> None:
        self._stream_writer = writer
        self._replace_transport(writer.transport)

    def connection_made(self, transport: Any) -> None:
        """Attach the reader; on a server, start the client callback."""
        if self._reject_connection:
            context: dict[str, Any] = {
                "message": (
                    "An open stream was garbage collected prior to "
                    "establishing network connection; "
                    'call "stream.close()" explicitly.'
                )
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)
            transport.abort()
            return
        self._transport = transport
        reader = self._stream_reader
        if reader is not None:
            reader.set_transport(transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        if self._client_connected_cb is not None:
            writer = StreamWriter(transport, self, reader, self._loop)
            if not _PY313:
                self._stream_writer = writer
            res = self._client_connected_cb(reader, writer)
            if iscoroutine(res):
                loop = self._loop

                def callback(task: Any) -> None:
                    if _PY313 and task.cancelled():
                        transport.close()
                        return
                    exc = task.exception()
                    if exc is not None:
                        loop.call_exception_handler({
                            "message": "Unhandled exception in client_connected_cb",
                            "exception": exc,
                            "transport": transport,
                        })
                        transport.close()

                self._task = loop.create_task(res)
                self._task.add_done_callback(callback)
            self._strong_reader = None

    def connection_lost(self, exc: BaseException | None) -> None:
        """End the reader (EOF or *exc*) and resolve the close waiter."""
        reader = self._stream_reader
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        closed = self._closed
        if not closed.done():
            if exc is None:
                closed.set_result(None)
            else:
                closed.set_exception(exc)
        super().connection_lost(exc)
        self._stream_reader_wr = None
        self._stream_writer = None
        self._task = None
        self._transport = None

    def data_received(self, data: bytes) -> None:
        """Hand *data* to the reader."""
        ref = self._stream_reader_wr
        if ref is not None:
            reader = ref()
            if reader is not None:
                reader.feed_data(data)

    def eof_received(self) -> bool:
        """Mark the reader at EOF; keep the transport open for writing (except over TLS)."""
        reader = self._stream_reader
        if reader is not None:
            reader.feed_eof()
        # SSLProtocol would warn that a true return has no effect over TLS.
        return not self._over_ssl

    def _get_close_waiter(self, stream: Any) -> Any:
        return self._closed

    def __del__(self) -> None:
        # The close future's exception is the stream's business, not a
        # "never retrieved" report.
        try:
            closed = self._closed
        except AttributeError:
            return  # the constructor failed
        if closed.done() and not closed.cancelled():
            closed.exception()


class StreamWriter:
    """Wraps a transport: write(), drain() for flow control, close() and wait_closed()."""

    def __init__(self, transport: Any, protocol: Any, reader: StreamReader | None,
                 loop: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        # drain() reads the reader's exception().
        assert reader is None or isinstance(reader, StreamReader)
        self._reader = reader
        self._loop = loop

    def __repr__(self) -> str:
        info = [self.__class__.__name__, f"transport={self._transport!r}"]
        if self._reader is not None:
            info.append(f"reader={self._reader!r}")
        return "<{}>".format(" ".join(info))

    @property
    def transport(self) -> Any:
        """The underlying transport."""
        return self._transport

    def write(self, data: Any) -> None:
        """Write *data* (buffered if the kernel will not take it yet)."""
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        """Write each buffer of *data*."""
        self._transport.writelines(data)

    def write_eof(self) -> Any:
        """Close the write side after the buffer is flushed."""
        return self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """True if the transport supports write_eof()."""
        can: bool = self._transport.can_write_eof()
        return can

    def close(self) -> Any:
        """Close the transport (buffered data is still sent)."""
        return self._transport.close()

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""
        closing: bool = self._transport.is_closing()
        return closing

    async def wait_closed(self) -> None:
        """Wait until the connection is lost; raise its error, if any."""
        await self._protocol._get_close_waiter(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra info *name* ('peername', 'socket'...)."""
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark.

        Raises the reader's exception, or ConnectionResetError once the
        connection is lost.
        """
        reader = self._reader
        if reader is not None:
            exc = reader.exception()
            if exc is not None:
                raise exc
        if self._transport.is_closing():
            # Let connection_lost() run first, so that a write()/drain() loop
            # on a closed socket sees the error instead of spinning.
            await sleep(0)
        protocol = self._protocol
        # asyncio always awaits _drain_helper(); a plain StreamReaderProtocol
        # neither paused nor lost would return at once, so it is skipped, even
        # if patched on the instance (asking costs 50-150 ns per drain()).
        if protocol.__class__ is not StreamReaderProtocol or (
            protocol._connection_lost or protocol._paused
        ):
            await protocol._drain_helper()

    async def start_tls(self, sslcontext: Any, *, server_hostname: str | None = None,
                        ssl_handshake_timeout: float | None = None,
                        ssl_shutdown_timeout: float | None = None) -> None:
        """Upgrade the connection to TLS in place."""
        server_side = self._protocol._client_connected_cb is not None
        protocol = self._protocol
        await self.drain()
        new_transport = await self._loop.start_tls(
            self._transport, protocol, sslcontext, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        self._transport = new_transport
        if _PY313:
            protocol._replace_transport(new_transport)
        else:
            protocol._replace_writer(self)

    def __del__(self, warnings: Any = warnings) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and not transport.is_closing():
            if self._loop.is_closed():
                warnings.warn("loop is closed", ResourceWarning)
            else:
                self.close()
                warnings.warn(f"unclosed {self!r}", ResourceWarning)


"""The datagram socket transport: sendto() at once, a queue of whole datagrams otherwise."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import deque
from typing import Any

from tidal._io.transport import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    WEAKREF_SLOT,
    SocketTransportBase,
    logger,
    recv_buffer,
    set_result_unless_cancelled,
)

_IP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_SEND_EMPTY = sys.version_info >= (3, 13)  # 3.13 sends zero-length datagrams
_HEADER_SIZE = 8 if sys.version_info >= (3, 13) else 0  # 3.13 counts a header per datagram


class _SelectorDatagramTransport(SocketTransportBase, asyncio.DatagramTransport):
    """A datagram socket as a DatagramTransport (named as asyncio's, for identical reprs)."""

    __slots__ = ("_address", "_buffer", "_buffer_size", "_recv_size", *WEAKREF_SLOT)

    max_size = 256 * 1024

    def __init__(self, loop: Any, sock: Any, protocol: Any, address: Any = None,
                 waiter: Any = None, extra: dict[str, Any] | None = None) -> None:
        self._buffer: deque[tuple[bytes, Any]] = deque()
        self._buffer_size = 0
        # A UDP datagram never exceeds 64 KiB, and a 256 KiB recvfrom() costs
        # an mmap()/munmap() pair per datagram in glibc; other families (Unix
        # datagrams can be larger) keep asyncio's size, read through the
        # thread's buffer.
        self._recv_size = 65536 if sock.family in _IP_FAMILIES else self.max_size
        super().__init__(loop, sock, protocol, extra)
        self._address = address
        loop.call_soon(protocol.connection_made, self, context=self._context)
        loop.call_soon(self._start_reading, context=self._context)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None, context=self._context)

    def get_write_buffer_size(self) -> int:
        """Bytes of datagrams waiting to be sent."""
        return self._buffer_size

    def _has_buffer(self) -> bool:
        return bool(self._buffer)

    def _clear_buffer(self) -> None:
        self._buffer.clear()

    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        try:
            size = self._recv_size
            if size <= 65536:
                data, addr = self._sock.recvfrom(size)
            else:
                # Unix datagrams: see recv_buffer().
                view = recv_buffer(size)
                n, addr = self._sock.recvfrom_into(view, size)
                data = bytes(view[:n])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            self._protocol.datagram_received(data, addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram to *addr* (or to the connected peer)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if not _SEND_EMPTY and not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost and self._address:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._start_writing()
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        # A copy: the caller may reuse its buffer once sendto() returns.
        self._buffer.append((bytes(data), addr))
        self._buffer_size += len(data) + _HEADER_SIZE
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer.popleft()
            self._buffer_size -= len(data) + _HEADER_SIZE
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                buffer.appendleft((data, addr))  # try again later
                self._buffer_size += len(data) + _HEADER_SIZE
                break
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._maybe_resume_protocol()  # may append to the buffer
        if not buffer:
            self._stop_writing()
            if self._closing:
                self._call_connection_lost(None)

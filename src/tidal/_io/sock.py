"""Low-level socket operations on the loop: sock_recv, sock_sendall, sock_connect, DNS.

Every operation first tries the syscall.  Only when the kernel says
"would block" does the task park: on a future from ``create_future()``, with
a small operation object sitting directly in the loop's fd table as the
reader or writer.  When the fd is ready the object retries the syscall,
removes itself and completes the future, which puts the task straight back
on the ready queue.  No Handle, no partial, no done-callback round trip.

The registration is removed as soon as the operation completes rather than
kept for the next call: these sockets belong to the caller, who may close
them at any moment, and epoll keeps reporting a closed fd whose file is
still open elsewhere (a dup, a forked child), which the loop could then no
longer unregister.  Transports, which own their sockets, keep theirs.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import socket
import sys
from asyncio import SendfileNotAvailableError
from typing import Any

from tidal._core.loop import BaseEventLoop
from tidal._core.plumbing import internal_frames, strip_internal_frames
from tidal._io.addr import check_nonblocking, check_ssl_socket, ensure_resolved
from tidal._io.fdwatch import unwatch, watch

_SENDFILE_FALLBACK_BUFSIZE = 1024 * 256
logger = logging.getLogger("asyncio")
_AGAIN: Any = object()  # an operation made progress but is not finished


class _SockOp:
    """A pending socket operation: the loop calls ``_run()`` when the fd is ready."""

    __slots__ = ("_cancelled", "_loop", "_fut", "_sock", "_fd", "_writer")

    def __init__(self, loop: Any, sock: Any) -> None:
        self._cancelled = False
        self._loop = loop
        self._sock = sock
        self._fut: Any = None
        self._fd = -1
        self._writer = False

    def cancel(self) -> None:
        """Called by the loop when the registration is removed or replaced."""
        self._cancelled = True

    def park(self, writer: bool) -> Any:
        """Register for readiness and return the future the caller awaits."""
        loop = self._loop
        fd = self._sock.fileno()
        loop._ensure_fd_no_transport(fd)
        self._fut = fut = loop.create_future()
        self._fd = fd
        self._writer = writer
        watch(loop, fd, self, writer)
        return fut

    def release(self) -> None:
        """Drop the registration if it is still ours (the awaiting task left)."""
        if not self._cancelled:
            unwatch(self._loop, self._fd, self._writer, self)
        self._fut = None

    def attempt(self) -> Any:
        """Retry the syscall: a result, ``_AGAIN``, or an exception."""
        raise NotImplementedError

    def _run(self) -> None:
        if self._cancelled:
            return
        fut = self._fut
        if fut is None or fut.done():
            unwatch(self._loop, self._fd, self._writer, self)
            return
        try:
            result = self.attempt()
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            unwatch(self._loop, self._fd, self._writer, self)
            strip_internal_frames(exc)  # the traceback starts at the failed call
            fut.set_exception(exc)
            fut = None  # the traceback keeps this frame: no cycle through the future
            return
        if result is _AGAIN:
            return
        unwatch(self._loop, self._fd, self._writer, self)
        fut.set_result(result)


class _Recv(_SockOp):
    __slots__ = ("_n",)

    def __init__(self, loop: Any, sock: Any, n: int) -> None:
        super().__init__(loop, sock)
        self._n = n

    def attempt(self) -> Any:
        return self._sock.recv(self._n)


class _RecvInto(_SockOp):
    __slots__ = ("_buf",)

    def __init__(self, loop: Any, sock: Any, buf: Any) -> None:
        super().__init__(loop, sock)
        self._buf = buf

    def attempt(self) -> Any:
        return self._sock.recv_into(self._buf)


class _RecvFrom(_SockOp):
    __slots__ = ("_n",)

    def __init__(self, loop: Any, sock: Any, n: int) -> None:
        super().__init__(loop, sock)
        self._n = n

    def attempt(self) -> Any:
        return self._sock.recvfrom(self._n)


class _RecvFromInto(_SockOp):
    __slots__ = ("_buf", "_n")

    def __init__(self, loop: Any, sock: Any, buf: Any, n: int) -> None:
        super().__init__(loop, sock)
        self._buf = buf
        self._n = n

    def attempt(self) -> Any:
        return self._sock.recvfrom_into(self._buf, self._n)


class _SendAll(_SockOp):
    __slots__ = ("_view", "_pos")

    def __init__(self, loop: Any, sock: Any, data: Any, pos: int) -> None:
        super().__init__(loop, sock)
        self._view = memoryview(data)
        self._pos = pos

    def attempt(self) -> Any:
        pos = self._pos + self._sock.send(self._view[self._pos:])
        if pos == len(self._view):
            return None
        self._pos = pos
        return _AGAIN


class _SendTo(_SockOp):
    __slots__ = ("_data", "_addr")

    def __init__(self, loop: Any, sock: Any, data: Any, addr: Any) -> None:
        super().__init__(loop, sock)
        self._data = data
        self._addr = addr

    def attempt(self) -> Any:
        return self._sock.sendto(self._data, 0, self._addr)


class _Connect(_SockOp):
    __slots__ = ("_addr",)

    def __init__(self, loop: Any, sock: Any, addr: Any) -> None:
        super().__init__(loop, sock)
        self._addr = addr

    def attempt(self) -> Any:
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {self._addr}")
        return None


class _Accept(_SockOp):
    __slots__ = ()

    def attempt(self) -> Any:
        conn, address = self._sock.accept()
        conn.setblocking(False)
        return conn, address


class _SendFile(_SockOp):
    """os.sendfile() one chunk per writable event, as asyncio does."""

    __slots__ = ("_fileno", "_offset", "_count", "_blocksize", "_total")

    def __init__(self, loop: Any, sock: Any, fileno: int, offset: int, count: int | None,
                 blocksize: int) -> None:
        super().__init__(loop, sock)
        self._fileno = fileno
        self._offset = offset
        self._count = count
        self._blocksize = blocksize
        self._total = 0

    def _seek_back(self) -> None:
        if self._total > 0:
            os.lseek(self._fileno, self._offset, os.SEEK_SET)

    def attempt(self) -> Any:
        count = self._count
        if count:
            self._blocksize = count - self._total
            if self._blocksize <= 0:
                self._seek_back()
                return self._total
        # 32-bit platforms: stay below what an ssize_t can express.
        blocksize = min(self._blocksize, sys.maxsize // 2 + 1)
        error: BaseException | None = None
        try:
            sent = os.sendfile(self._fd if self._fd >= 0 else self._sock.fileno(),
                               self._fileno, self._offset, blocksize)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            error = exc
            if self._fd >= 0 and exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                # The peer went away mid-transfer: report it the same way on
                # every POSIX system.
                error = ConnectionError("socket is not connected", errno.ENOTCONN)
                error.__cause__ = exc
            if self._total == 0:
                # Typically a file sendfile() cannot map: use plain send().
                error = SendfileNotAvailableError("os.sendfile call failed")
        except BaseException:
            self._seek_back()
            raise
        if error is not None:
            self._seek_back()
            raise error
        if sent == 0:  # end of file
            self._seek_back()
            return self._total
        self._offset += sent
        self._total += sent
        return _AGAIN


async def _wait(op: _SockOp, writer: bool) -> Any:
    # Park until the operation completes; leave no registration behind if
    # the task is cancelled meanwhile.
    fut = op.park(writer)
    try:
        return await fut
    finally:
        op.release()
        fut = None  # no cycle through the future's traceback


class SocketMixin(BaseEventLoop):
    """Low-level socket operations on the loop: sock_recv, sock_sendall, sock_connect, DNS."""

    async def sock_recv(self, sock: Any, n: int) -> bytes:
        """Receive up to *n* bytes from the non-blocking socket *sock*."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        try:
            data: bytes = sock.recv(n)
            return data
        except (BlockingIOError, InterruptedError):
            pass
        data = await _wait(_Recv(self, sock, n), False)
        return data

    async def sock_recv_into(self, sock: Any, buf: Any) -> int:
        """Receive into the writable buffer *buf*; return the byte count."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        try:
            count: int = sock.recv_into(buf)
            return count
        except (BlockingIOError, InterruptedError):
            pass
        count = await _wait(_RecvInto(self, sock, buf), False)
        return count

    async def sock_recvfrom(self, sock: Any, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram: ``(data, address)``."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        try:
            received: tuple[bytes, Any] = sock.recvfrom(bufsize)
            return received
        except (BlockingIOError, InterruptedError):
            pass
        received = await _wait(_RecvFrom(self, sock, bufsize), False)
        return received

    async def sock_recvfrom_into(self, sock: Any, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into *buf*: ``(nbytes, address)``."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            received: tuple[int, Any] = sock.recvfrom_into(buf, nbytes)
            return received
        except (BlockingIOError, InterruptedError):
            pass
        received = await _wait(_RecvFromInto(self, sock, buf, nbytes), False)
        return received

    async def sock_sendall(self, sock: Any, data: Any) -> None:
        """Send all of *data*; return None once the kernel has taken it all."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n == len(data):
            return
        await _wait(_SendAll(self, sock, data, n), True)

    async def sock_sendto(self, sock: Any, data: Any, address: Any) -> int:
        """Send a datagram to *address*; return the number of bytes sent."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        try:
            sent: int = sock.sendto(data, address)
            return sent
        except (BlockingIOError, InterruptedError):
            pass
        sent = await _wait(_SendTo(self, sock, data, address), True)
        return sent

    async def sock_connect(self, sock: Any, address: Any) -> None:
        """Connect *sock* to *address* (resolving host names for IP sockets)."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        if sock.family == socket.AF_INET or (
            hasattr(socket, "AF_INET6") and sock.family == socket.AF_INET6
        ):
            resolved = await ensure_resolved(
                self, address, family=sock.family, type=sock.type, proto=sock.proto
            )
            address = resolved[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            # The connection goes on in the background (EINTR included):
            # writability says when it is done, SO_ERROR how it went.
            pass
        # _wait() inlined: a refused connection's traceback, the one users
        # see most, then has as many frames as asyncio's.
        op = _Connect(self, sock, address)
        fut = op.park(True)
        try:
            await fut
        finally:
            op.release()
            fut = None  # no cycle through the future's traceback

    async def sock_accept(self, sock: Any) -> tuple[socket.socket, Any]:
        """Accept a connection: ``(conn, address)``, *conn* non-blocking."""
        check_ssl_socket(sock)
        check_nonblocking(self, sock)
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address
        except (BlockingIOError, InterruptedError):
            pass
        accepted: tuple[socket.socket, Any] = await _wait(_Accept(self, sock), False)
        return accepted

    # -- sendfile ---------------------------------------------------------------

    async def sock_sendfile(self, sock: Any, file: Any, offset: int = 0,
                            count: int | None = None, *, fallback: bool | None = True) -> int:
        """Send *file* over *sock* with os.sendfile(), or read-and-send if needed."""
        check_nonblocking(self, sock)
        check_ssl_socket(sock)
        _check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock: Any, file: Any, offset: int,
                                    count: int | None) -> int:
        if not hasattr(os, "sendfile"):
            raise SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise SendfileNotAvailableError("not a regular file") from None
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise SendfileNotAvailableError("not a regular file") from None
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file
        op = _SendFile(self, sock, fileno, offset, count, blocksize)
        # The first chunk goes at once; later ones wait for writability.
        try:
            result = op.attempt()
        except (BlockingIOError, InterruptedError):
            result = _AGAIN
        if result is not _AGAIN:
            return result  # type: ignore[no-any-return]
        sent: int = await _wait(op, True)
        return sent

    async def _sock_sendfile_fallback(self, sock: Any, file: Any, offset: int,
                                      count: int | None) -> int:
        if offset:
            file.seek(offset)
        blocksize = (
            min(count, _SENDFILE_FALLBACK_BUFSIZE) if count else _SENDFILE_FALLBACK_BUFSIZE
        )
        buf = bytearray(blocksize)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    break  # EOF
                await self.sock_sendall(sock, view[:read])
                total_sent += read
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)

    # -- name resolution ----------------------------------------------------------

    def _getaddrinfo_debug(self, host: Any, port: Any, family: int, type: int, proto: int,
                           flags: int) -> list[Any]:
        parts = [f"{host}:{port!r}"]
        if family:
            parts.append(f"family={family!r}")
        if type:
            parts.append(f"type={type!r}")
        if proto:
            parts.append(f"proto={proto!r}")
        if flags:
            parts.append(f"flags={flags!r}")
        msg = ", ".join(parts)
        logger.debug("Get address info %s", msg)
        t0 = self.time()
        addrinfo = socket.getaddrinfo(host, port, family, type, proto, flags)
        dt = self.time() - t0
        text = f"Getting address info {msg} took {dt * 1e3:.3f}ms: {addrinfo!r}"
        if dt >= self.slow_callback_duration:
            logger.info(text)
        else:
            logger.debug(text)
        return addrinfo

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[Any]:
        """socket.getaddrinfo() in the default executor, off the loop thread."""
        func = self._getaddrinfo_debug if self._debug else socket.getaddrinfo
        infos: list[Any] = await self.run_in_executor(
            None, func, host, port, family, type, proto, flags
        )
        return infos

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """socket.getnameinfo() in the default executor, off the loop thread."""
        names: tuple[str, str] = await self.run_in_executor(
            None, socket.getnameinfo, sockaddr, flags
        )
        return names

    async def _ensure_resolved(self, address: Any, *, family: int = 0,
                               type: int = socket.SOCK_STREAM, proto: int = 0,
                               flags: int = 0, loop: Any = None) -> list[Any]:
        # Kept under asyncio's private name: some libraries call it.
        return await ensure_resolved(loop if loop is not None else self, address,
                                     family=family, type=type, proto=proto, flags=flags)


def _check_sendfile_params(sock: Any, file: Any, offset: Any, count: Any) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


# Plumbing between a failed syscall and the awaiting coroutine: not shown
# where an exception crosses a task boundary (asyncio's are C or inline).
internal_frames(_SockOp._run, _wait)

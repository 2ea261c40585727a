"""loop.sock_* calls, on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import ssl
import tempfile
from types import ModuleType
from typing import Any

import pytest


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_recv_waits_then_gets_data(aio: ModuleType, loop: Any) -> None:
    async def main() -> bytes:
        a, b = _pair()
        with a, b:
            task = loop.create_task(loop.sock_recv(b, 100))
            await aio.sleep(0)
            assert not task.done()
            await loop.sock_sendall(a, b"hello")
            return await task  # type: ignore[no-any-return]

    assert loop.run_until_complete(main()) == b"hello"


def test_recv_into_recvfrom_and_recvfrom_into(loop: Any) -> None:
    async def main() -> tuple[Any, ...]:
        a, b = _pair()
        with a, b:
            buf = bytearray(10)
            task = loop.create_task(loop.sock_recv_into(b, buf))
            await loop.sock_sendall(a, b"abc")
            n = await task
            u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with u1, u2:
                u1.setblocking(False)
                u2.setblocking(False)
                u1.bind(("127.0.0.1", 0))
                t1 = loop.create_task(loop.sock_recvfrom(u1, 100))
                await loop.sock_sendto(u2, b"dgram", u1.getsockname())
                data, addr = await t1
                rbuf = bytearray(3)
                t2 = loop.create_task(loop.sock_recvfrom_into(u1, rbuf, 2))
                await loop.sock_sendto(u2, b"xyz", u1.getsockname())
                n2, _ = await t2
                return bytes(buf[:n]), data, addr[1] == u2.getsockname()[1], n2, bytes(rbuf)

    assert loop.run_until_complete(main()) == (b"abc", b"dgram", True, 2, b"xy\x00")


def test_sendall_large_payload_blocks_until_read(aio: ModuleType, loop: Any) -> None:
    payload = os.urandom(4 * 1024 * 1024)

    async def main() -> bytes:
        a, b = _pair()
        with a, b:
            sender = loop.create_task(loop.sock_sendall(a, payload))
            chunks = []
            received = 0
            while received < len(payload):
                chunk = await loop.sock_recv(b, 65536)
                chunks.append(chunk)
                received += len(chunk)
            await sender
            return b"".join(chunks)

    assert loop.run_until_complete(main()) == payload


def test_connect_accept_and_resolution(loop: Any) -> None:
    async def main() -> tuple[float, str, bytes]:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        with srv, client:
            accepting = loop.create_task(loop.sock_accept(srv))
            await loop.sock_connect(client, ("localhost", srv.getsockname()[1]))
            conn, addr = await accepting
            with conn:
                await loop.sock_sendall(client, b"ping")
                return conn.gettimeout(), addr[0], await loop.sock_recv(conn, 10)

    assert loop.run_until_complete(main()) == (0.0, "127.0.0.1", b"ping")


def test_connect_refused(loop: Any) -> None:
    async def main() -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        client = socket.socket()
        client.setblocking(False)
        with client:
            await loop.sock_connect(client, ("127.0.0.1", port))

    with pytest.raises(ConnectionRefusedError):
        loop.run_until_complete(main())


def test_cancelled_recv_unregisters(aio: ModuleType, loop: Any) -> None:
    async def main() -> bytes:
        a, b = _pair()
        with a, b:
            task = loop.create_task(loop.sock_recv(b, 10))
            await aio.sleep(0)
            task.cancel()
            with pytest.raises(aio.CancelledError):
                await task
            await aio.sleep(0)
            # The fd is free again: a plain reader can take it.
            got = loop.create_future()
            loop.add_reader(b.fileno(), lambda: got.set_result(b.recv(10)))
            a.send(b"later")
            data: bytes = await got
            assert loop.remove_reader(b.fileno())
            return data

    assert loop.run_until_complete(main()) == b"later"


def test_debug_mode_refuses_blocking_socket(loop: Any) -> None:
    loop.set_debug(True)
    a, b = socket.socketpair()
    with a, b:
        for coro in (loop.sock_recv(a, 1), loop.sock_sendall(a, b"x"),
                     loop.sock_accept(a), loop.sock_connect(a, "x")):
            with pytest.raises(ValueError, match=r"^the socket must be non-blocking$"):
                loop.run_until_complete(coro)


def test_ssl_socket_refused(loop: Any) -> None:
    ctx = ssl.create_default_context()
    sock = ctx.wrap_socket(socket.socket(), do_handshake_on_connect=False,
                           server_hostname="x")
    with sock:
        with pytest.raises(TypeError, match=r"^Socket cannot be of type SSLSocket$"):
            loop.run_until_complete(loop.sock_recv(sock, 1))


def test_sock_sendfile_native_and_fallback(loop: Any) -> None:
    data = os.urandom(300_000)

    async def main(fallback_only: bool) -> tuple[int, int, bytes]:
        a, b = _pair()
        with a, b, tempfile.TemporaryFile() as f:
            f.write(data)
            f.flush()
            f.seek(0)

            async def drain(n: int) -> bytes:
                out = bytearray()
                while len(out) < n:
                    out += await loop.sock_recv(b, 65536)
                return bytes(out)

            reader = loop.create_task(drain(len(data) - 1000))
            if fallback_only:
                sent = await loop._sock_sendfile_fallback(a, f, 1000, None)
            else:
                sent = await loop.sock_sendfile(a, f, offset=1000)
            return sent, f.tell(), await reader

    for fallback_only in (False, True):
        sent, pos, got = loop.run_until_complete(main(fallback_only))
        assert (sent, pos) == (len(data) - 1000, len(data))
        assert got == data[1000:]


def test_sock_sendfile_argument_checks(loop: Any) -> None:
    a, b = _pair()
    with a, b, tempfile.TemporaryFile() as f:
        cases: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"count": 0}, ValueError, r"^count must be a positive integer \(got 0\)$"),
            ({"count": "x"}, TypeError, r"^count must be a positive integer \(got 'x'\)$"),
            ({"offset": -1}, ValueError, r"^offset must be a non-negative integer \(got -1\)$"),
            ({"offset": 1.5}, TypeError, r"^offset must be a non-negative integer \(got 1\.5\)$"),
        ]
        for kwargs, exc, msg in cases:
            with pytest.raises(exc, match=msg):
                loop.run_until_complete(loop.sock_sendfile(a, f, **kwargs))
        with tempfile.TemporaryFile("w") as text:
            with pytest.raises(ValueError, match=r"^file should be opened in binary mode$"):
                loop.run_until_complete(loop.sock_sendfile(a, text))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setblocking(False)
        with udp:
            with pytest.raises(ValueError, match=r"^only SOCK_STREAM type sockets are supported$"):
                loop.run_until_complete(loop.sock_sendfile(udp, f))
        # An empty file sends nothing and does not fail.
        assert loop.run_until_complete(loop.sock_sendfile(a, f)) == 0


def test_sock_sendfile_without_fileno(loop: Any) -> None:
    async def main() -> tuple[int, bytes]:
        a, b = _pair()
        with a, b:
            with pytest.raises(asyncio.SendfileNotAvailableError, match=r"^not a regular file$"):
                await loop.sock_sendfile(a, io.BytesIO(b"data"), fallback=False)
            sent = await loop.sock_sendfile(a, io.BytesIO(b"data"))
            return sent, await loop.sock_recv(b, 10)

    assert loop.run_until_complete(main()) == (4, b"data")


def test_getaddrinfo_and_getnameinfo(loop: Any) -> None:
    infos = loop.run_until_complete(
        loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    )
    assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    name = loop.run_until_complete(
        loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    )
    assert name == ("127.0.0.1", "80")


def test_sock_connect_failure_error(loop: Any) -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, "/nonexistent/tidal-test.sock")

    with pytest.raises(OSError) as info:
        loop.run_until_complete(main())
    assert info.value.errno == errno.ENOENT

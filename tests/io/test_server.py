"""Servers: async with, serve_forever, wait_closed, several hosts, client bookkeeping."""

from __future__ import annotations

import asyncio
import socket
import sys
from types import ModuleType
from typing import Any

import pytest

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


def test_async_with_closes(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, bool, str, tuple[Any, ...]]:
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        async with srv:
            serving = srv.is_serving()
            text = repr(srv)
        return serving, srv.is_serving(), text, srv.sockets

    serving, after, text, sockets = loop.run_until_complete(main())
    assert serving and not after
    assert text.startswith("<Server sockets=(<asyncio.TransportSocket fd=")
    assert sockets == ()


def test_start_serving_false(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, bool, bytes]:
        srv = await loop.create_server(
            lambda: _Greeter(), "127.0.0.1", 0, start_serving=False)
        before = srv.is_serving()
        await srv.start_serving()
        await srv.start_serving()  # idempotent
        reader, writer = await aio.open_connection(*srv.sockets[0].getsockname()[:2])
        data = await reader.read()
        writer.close()
        srv.close()
        await srv.wait_closed()
        return before, srv.get_loop() is loop, data

    assert loop.run_until_complete(main()) == (False, True, b"hi")


class _Greeter(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        transport.write(b"hi")
        transport.close()


def test_serve_forever_cancel(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, str]:
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        task = loop.create_task(srv.serve_forever())
        await aio.sleep(0)
        assert srv.is_serving()
        with pytest.raises(RuntimeError) as err:
            await srv.serve_forever()
        assert str(err.value) == f"server {srv!r} is already being awaited on serve_forever()"
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        closed = not srv.is_serving() and srv.sockets == ()
        with pytest.raises(RuntimeError) as info:
            await srv.serve_forever()
        return closed, str(info.value)

    closed, msg = loop.run_until_complete(main())
    assert closed
    assert msg.endswith(" is closed") and msg.startswith("server <Server sockets=()>")


def test_wait_closed_waits_for_clients(aio: ModuleType, virtual_loop: Any) -> None:
    # On tidal virtual time: the 10 ms pause ends once the loop is quiet, so
    # wait_closed() has surely had every chance to return early.
    loop = virtual_loop

    async def main() -> list[str]:
        log: list[str] = []
        conns: list[Any] = []

        class Keep(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                conns.append(transport)

        srv = await loop.create_server(Keep, "127.0.0.1", 0)
        _reader, writer = await aio.open_connection(*srv.sockets[0].getsockname()[:2])
        while not conns:
            await aio.sleep(0.001)
        srv.close()

        async def waiter() -> None:
            await srv.wait_closed()
            log.append("closed")

        task = loop.create_task(waiter())
        await aio.sleep(0.01)
        log.append("client still open")
        conns[0].close()
        await task
        writer.close()
        await writer.wait_closed()
        return log

    log = loop.run_until_complete(main())
    if PY312:
        assert log == ["client still open", "closed"]
    else:  # 3.11 returns at once once the server is closed
        assert log == ["closed", "client still open"]


@pytest.mark.skipif(not PY313, reason="close_clients/abort_clients are new in 3.13")
@pytest.mark.parametrize("method", ["close_clients", "abort_clients"])
def test_close_and_abort_clients(aio: ModuleType, virtual_loop: Any, method: str) -> None:
    loop = virtual_loop  # the pause lets the connection settle; virtual on tidal

    async def main() -> bytes:
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        reader, writer = await aio.open_connection(*srv.sockets[0].getsockname()[:2])
        await aio.sleep(0.01)
        srv.close()
        getattr(srv, method)()
        await srv.wait_closed()
        data: bytes = await reader.read()
        writer.close()
        return data

    assert loop.run_until_complete(main()) == b""


def test_several_hosts_and_reuse_port(loop: Any) -> None:
    async def main() -> list[str]:
        srv = await loop.create_server(asyncio.Protocol, ["127.0.0.1", "localhost"], 0,
                                       family=socket.AF_INET, reuse_port=True)
        hosts = sorted(s.getsockname()[0] for s in srv.sockets)
        for s in srv.sockets:
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        srv.close()
        await srv.wait_closed()
        return hosts

    # 'localhost' resolves to 127.0.0.1 too: the same address binds once.
    assert loop.run_until_complete(main()) == ["127.0.0.1"]


def test_bind_error_message(loop: Any) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    with taken, pytest.raises(OSError) as info:
        loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", port,
                                                   reuse_address=False))
    assert str(info.value) == (f"[Errno 98] error while attempting to bind on address "
                               f"('127.0.0.1', {port}): [errno 98] address already in use"
                               if PY313 else
                               f"[Errno 98] error while attempting to bind on address "
                               f"('127.0.0.1', {port}): address already in use")


def test_create_server_argument_errors(loop: Any) -> None:
    with pytest.raises(TypeError, match=r"^ssl argument must be an SSLContext or None$"):
        loop.run_until_complete(loop.create_server(asyncio.Protocol, "h", 1, ssl=True))
    with pytest.raises(ValueError, match=r"^ssl_handshake_timeout is only meaningful with ssl$"):
        loop.run_until_complete(loop.create_server(asyncio.Protocol, "h", 1,
                                                   ssl_handshake_timeout=1))
    with pytest.raises(ValueError, match=r"^Neither host/port nor sock were specified$"):
        loop.run_until_complete(loop.create_server(asyncio.Protocol))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with u:
        with pytest.raises(ValueError) as err:
            loop.run_until_complete(loop.create_server(asyncio.Protocol, sock=u))
        assert str(err.value) == f"A Stream Socket was expected, got {u!r}"


def test_server_on_given_socket(aio: ModuleType, loop: Any) -> None:
    async def main() -> bytes:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        srv = await loop.create_server(_Greeter, sock=sock)
        reader, writer = await aio.open_connection(*sock.getsockname())
        data: bytes = await reader.read()
        writer.close()
        srv.close()
        await srv.wait_closed()
        assert sock.fileno() == -1  # the server closed it
        return data

    assert loop.run_until_complete(main()) == b"hi"


def test_many_connections_no_fd_leak(aio: ModuleType, loop: Any, fd_count: Any) -> None:
    async def main() -> int:
        async def handle(reader: Any, writer: Any) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        srv = await aio.start_server(handle, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()[:2]

        async def client(i: int) -> bytes:
            reader, writer = await aio.open_connection(*addr)
            writer.write(b"%d\n" % i)
            line: bytes = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return line

        results = [await client(i) for i in range(20)]
        srv.close()
        await srv.wait_closed()
        return sum(int(r) for r in results)

    loop.run_until_complete(main())  # warm up executor threads and the like
    before = fd_count()
    assert loop.run_until_complete(main()) == sum(range(20))
    assert fd_count() == before

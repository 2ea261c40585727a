"""StreamReader/StreamWriter: reads, limits, EOF, errors, drain, start_server callbacks."""

from __future__ import annotations

import socket
import sys
from types import ModuleType
from typing import Any

import pytest

PY313 = sys.version_info >= (3, 13)


def _reader(aio: ModuleType, loop: Any, data: bytes = b"", eof: bool = False,
            limit: int = 2**16) -> Any:
    reader = aio.StreamReader(limit=limit, loop=loop)
    if data:
        reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def test_read_variants(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        r = _reader(aio, loop, b"line one\nline two\r\nrest", eof=True)
        return [
            await r.readline(), await r.readuntil(b"\r\n"), await r.read(2),
            await r.readexactly(1), await r.read(0), await r.read(), await r.read(),
            await r.readline(), r.at_eof(),
        ]

    assert loop.run_until_complete(main()) == [
        b"line one\n", b"line two\r\n", b"re", b"s", b"", b"t", b"", b"", True,
    ]


def test_read_waits_for_feed(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bytes, bytes]:
        r = _reader(aio, loop)
        task = loop.create_task(r.read(10))
        await aio.sleep(0)
        assert "waiter=" in repr(r)
        r.feed_data(b"abc")
        first = await task
        task = loop.create_task(r.readexactly(4))
        for chunk in (b"d", b"ef", b"gh"):
            await aio.sleep(0)
            r.feed_data(chunk)
        return first, await task

    assert loop.run_until_complete(main()) == (b"abc", b"defg")


def test_incomplete_read(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[Any, ...]:
        r = _reader(aio, loop, b"abc", eof=True)
        with pytest.raises(aio.IncompleteReadError) as info:
            await r.readexactly(5)
        r2 = _reader(aio, loop, b"no sep", eof=True)
        with pytest.raises(aio.IncompleteReadError) as info2:
            await r2.readuntil(b"!")
        return (info.value.partial, info.value.expected, str(info.value),
                info2.value.partial, info2.value.expected)

    assert loop.run_until_complete(main()) == (
        b"abc", 5, "3 bytes read on a total of 5 expected bytes", b"no sep", None,
    )


def test_limits(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        out: list[Any] = []
        r = _reader(aio, loop, b"0123456789\nnext\n", limit=4)
        with pytest.raises(ValueError) as info:
            await r.readline()
        out.append(str(info.value))
        out.append(await r.readline())  # the long line was dropped
        r = _reader(aio, loop, b"0123456789", limit=4)
        with pytest.raises(aio.LimitOverrunError) as info2:
            await r.readuntil(b"\n")
        out += [info2.value.consumed, str(info2.value)]
        r = _reader(aio, loop, b"0123456789\n", limit=4)
        with pytest.raises(aio.LimitOverrunError) as info3:
            await r.readuntil(b"\n")
        out += [info3.value.consumed, str(info3.value), await r.read(20)]
        return out

    assert loop.run_until_complete(main()) == [
        "Separator is found, but chunk is longer than limit", b"next\n",
        10, "Separator is not found, and chunk exceed the limit",
        10, "Separator is found, but chunk is longer than limit", b"0123456789\n",
    ]


def test_readuntil_argument_errors(aio: ModuleType, loop: Any) -> None:
    r = _reader(aio, loop, b"data")
    with pytest.raises(ValueError, match=r"^Separator should be at least one-byte string$"):
        loop.run_until_complete(r.readuntil(b""))
    with pytest.raises(ValueError, match=r"^Limit cannot be <= 0$"):
        aio.StreamReader(limit=0, loop=loop)
    with pytest.raises(ValueError, match=r"^readexactly size can not be less than zero$"):
        loop.run_until_complete(r.readexactly(-1))


@pytest.mark.skipif(not PY313, reason="separator tuples are new in 3.13")
def test_readuntil_tuple(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[bytes]:
        r = _reader(aio, loop, b"a;b\r\nc\n", eof=True)
        return [await r.readuntil((b"\n", b";")), await r.readuntil((b"\r\n", b"\n")),
                await r.readuntil((b"\n",))]

    assert loop.run_until_complete(main()) == [b"a;", b"b\r\n", b"c\n"]
    with pytest.raises(ValueError, match=r"^Separator should contain at least one element$"):
        loop.run_until_complete(_reader(aio, loop, b"x").readuntil(()))


def test_exception_and_concurrent_readers(aio: ModuleType, loop: Any) -> None:
    async def main() -> str:
        r = _reader(aio, loop)
        task = loop.create_task(r.read(1))
        await aio.sleep(0)
        with pytest.raises(RuntimeError) as info:
            await r.readline()
        r.set_exception(ConnectionResetError("gone"))
        with pytest.raises(ConnectionResetError):
            await task
        with pytest.raises(ConnectionResetError):
            await r.read(1)
        assert isinstance(r.exception(), ConnectionResetError)
        return str(info.value)

    assert loop.run_until_complete(main()) == (
        "readuntil() called while another coroutine is already waiting for incoming data"
    )


def test_async_iteration(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[bytes]:
        r = _reader(aio, loop, b"a\nb\nc", eof=True)
        return [line async for line in r]

    assert loop.run_until_complete(main()) == [b"a\n", b"b\n", b"c"]


def test_reader_repr(aio: ModuleType, loop: Any) -> None:
    r = _reader(aio, loop, b"abc", limit=10)
    r.feed_eof()
    assert repr(r) == "<StreamReader 3 bytes eof limit=10>"


def test_pause_when_buffer_over_twice_limit(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, bool, bytes]:
        a, b = socket.socketpair()
        reader, writer = await aio.open_connection(sock=a, limit=8)
        b.sendall(b"x" * 100)
        for _ in range(100):
            await aio.sleep(0)
            if not writer.transport.is_reading():
                break
        paused = not writer.transport.is_reading()
        data = await reader.read(100)
        resumed = writer.transport.is_reading()
        writer.close()
        b.close()
        return paused, resumed, data

    assert loop.run_until_complete(main()) == (True, True, b"x" * 100)


def test_writer_api_and_wait_closed(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[Any]:
        a, b = socket.socketpair()
        reader, writer = await aio.open_connection(sock=a)
        out: list[Any] = [repr(writer).startswith("<StreamWriter transport=<_Selector")]
        writer.write(b"ab")
        writer.writelines([b"c", b"d"])
        await writer.drain()
        out.append(writer.can_write_eof())
        out.append(writer.get_extra_info("peername") == a.getpeername())
        writer.write_eof()
        out.append(b.recv(10))
        out.append(b.recv(10))  # EOF
        b.sendall(b"reply")
        b.close()
        out.append(await reader.read())
        writer.close()
        out.append(writer.is_closing())
        await writer.wait_closed()
        return out

    assert loop.run_until_complete(main()) == [True, True, True, b"abcd", b"", b"reply", True]


def test_drain_after_peer_reset(aio: ModuleType, loop: Any) -> None:
    async def main() -> type:
        a, b = socket.socketpair()
        _reader, writer = await aio.open_connection(sock=a)
        b.close()
        with pytest.raises((ConnectionResetError, BrokenPipeError)) as info:
            for _ in range(1000):
                writer.write(b"x" * 65536)
                await writer.drain()
        writer.close()
        return type(info.value)

    assert loop.run_until_complete(main()) in (ConnectionResetError, BrokenPipeError)


def test_client_connected_cb_error_reported(aio: ModuleType, loop: Any) -> None:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main() -> bytes:
        async def handle(reader: Any, writer: Any) -> None:
            raise KeyError("handler failed")

        srv = await aio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await aio.open_connection(*srv.sockets[0].getsockname()[:2])
        data: bytes = await reader.read()  # the server closed the transport
        writer.close()
        srv.close()
        await srv.wait_closed()
        return data

    assert loop.run_until_complete(main()) == b""
    assert [c["message"] for c in contexts] == ["Unhandled exception in client_connected_cb"]
    assert isinstance(contexts[0]["exception"], KeyError)


def test_plain_callback_server(aio: ModuleType, loop: Any) -> None:
    async def main() -> bytes:
        def handle(reader: Any, writer: Any) -> None:
            writer.write(b"sync callback")
            writer.close()

        srv = await aio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await aio.open_connection(*srv.sockets[0].getsockname()[:2])
        data: bytes = await reader.read()
        writer.close()
        srv.close()
        await srv.wait_closed()
        return data

    assert loop.run_until_complete(main()) == b"sync callback"


def test_asyncio_streams_on_tidal_loop(dropin: Any) -> None:
    import asyncio

    async def main() -> bytes:
        async def handle(reader: Any, writer: Any) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with srv:
            reader, writer = await asyncio.open_connection(*srv.sockets[0].getsockname()[:2])
            writer.write(b"stdlib streams\n")
            data = await reader.read()
            writer.close()
            await writer.wait_closed()
        return data

    assert dropin(main()) == b"STDLIB STREAMS\n"

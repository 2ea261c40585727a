"""TLS end to end: create_connection/create_server/start_tls/streams with ssl=.

Each test runs on tidal's loop and on asyncio's (the oracle), through the
public loop and stream APIs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from tls_support import Certs, Recorder

# The shared fixtures: certs, errors, socks.
pytest_plugins = ("tls_fixtures",)


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A listening socket that accepts (in the kernel) and never says a word."""
    srv = socket.create_server(("127.0.0.1", 0))
    yield srv.getsockname()
    srv.close()


def run(loop: Any, coro: Any, timeout: float = 10.0) -> Any:
    """Run *coro*; a hang stops the loop (RuntimeError) instead of blocking the suite."""
    guard = loop.call_later(timeout, loop.stop)
    try:
        return loop.run_until_complete(coro)
    finally:
        guard.cancel()


async def tls_streams(aio: ModuleType, certs: Certs, handle: Any) -> tuple[Any, Any, Any]:
    """A TLS stream server running *handle*, and (reader, writer) connected to it."""
    server = await aio.start_server(handle, "127.0.0.1", 0, ssl=certs.server_context())
    port = server.sockets[0].getsockname()[1]
    reader, writer = await aio.open_connection(
        "127.0.0.1", port, ssl=certs.client_context(), server_hostname="localhost")
    return server, reader, writer


async def finish(server: Any, transport: Any = None, client: Any = None,
                 writer: Any = None) -> None:
    """Close the client side (transport and its Recorder, or a stream writer), then *server*."""
    if transport is not None:
        transport.close()
        await client.lost
    if writer is not None:
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()


class Echo(asyncio.Protocol):
    """Server protocol: echoes everything, records what happened to it."""

    def __init__(self, loop: Any, events: list[str]) -> None:
        self.events = events
        self.transport: Any = None
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


async def echo_server(loop: Any, certs: Certs, events: list[str],
                      protos: list[Echo] | None = None) -> tuple[Any, int]:
    def factory() -> Echo:
        proto = Echo(loop, events)
        if protos is not None:
            protos.append(proto)
        return proto

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=certs.server_context())
    return server, server.sockets[0].getsockname()[1]


def test_echo(aio: ModuleType, loop: Any, certs: Certs) -> None:
    events: list[str] = []
    protos: list[Echo] = []

    async def main() -> None:
        server, port = await echo_server(loop, certs, events, protos)
        transport, client = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=certs.client_context(), server_hostname="localhost")
        assert client.events == ["made"]
        assert transport.get_extra_info("peercert")["subject"] == ((("commonName", "localhost"),),)
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
        assert isinstance(transport.get_extra_info("ssl_object"), ssl.SSLObject)
        assert transport.get_extra_info("socket").fileno() >= 0
        assert not transport.can_write_eof()
        transport.write(b"hello over tls")
        await client.received(14)
        assert bytes(client.data) == b"hello over tls"
        transport.close()
        assert await client.lost is None
        assert await protos[0].lost is None
        await finish(server)

    run(loop, main())
    assert events == ["made", "eof", "lost"]


def test_large_transfer_streams(aio: ModuleType, loop: Any, certs: Certs) -> None:
    size = 4 * 1024 * 1024 + 3
    payload = os.urandom(size)

    async def handle(reader: Any, writer: Any) -> None:
        data = await reader.readexactly(size)
        writer.write(data)  # all of it back, in one write
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server, reader, writer = await tls_streams(aio, certs, handle)
        view = memoryview(payload)
        for i in range(0, size, 300_000):
            writer.write(view[i:i + 300_000])
            await writer.drain()
        back = await reader.readexactly(size)
        assert await reader.read() == b""
        await finish(server, writer=writer)
        return bytes(back)

    assert run(loop, main()) == payload


def test_open_connection_readline(aio: ModuleType, loop: Any, certs: Certs) -> None:
    async def handle(reader: Any, writer: Any) -> None:
        line = await reader.readline()
        writer.write(line.upper() + b"second line\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server, reader, writer = await tls_streams(aio, certs, handle)
        assert writer.get_extra_info("cipher") is not None
        assert not writer.can_write_eof()
        writer.write(b"first line\n")
        assert await reader.readline() == b"FIRST LINE\n"
        assert await reader.readline() == b"second line\n"
        assert await reader.readline() == b""
        assert reader.at_eof()
        await finish(server, writer=writer)

    run(loop, main())


def test_verification_failure(aio: ModuleType, loop: Any, certs: Certs,
                              errors: list[dict[str, Any]]) -> None:
    async def main() -> None:
        server, port = await echo_server(loop, certs, [])
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port,
                ssl=certs.untrusting_context(), server_hostname="localhost")
        assert info.value.verify_code == 20  # unable to get local issuer certificate
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port,
                ssl=certs.client_context(), server_hostname="not-localhost")
        assert "Hostname mismatch" in info.value.verify_message
        # ssl=True: the system's default trust store does not know our CA.
        with pytest.raises(ssl.SSLCertVerificationError):
            await aio.open_connection("127.0.0.1", port, ssl=True, server_hostname="localhost")
        await finish(server)

    run(loop, main())
    assert errors == []


def test_handshake_timeout(aio: ModuleType, loop: Any, certs: Certs,
                           silent_server: tuple[str, int]) -> None:
    async def main() -> None:
        with pytest.raises(ConnectionAbortedError) as info:
            await loop.create_connection(
                asyncio.Protocol, *silent_server, ssl=certs.client_context(),
                server_hostname="localhost", ssl_handshake_timeout=0.05)
        assert str(info.value) == (
            "SSL handshake is taking longer than 0.05 seconds: aborting the connection"
        )

    run(loop, main())


def test_clean_shutdown_from_server(aio: ModuleType, loop: Any, certs: Certs) -> None:
    class Bye(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            transport.write(b"bye" * 100_000)
            transport.close()

    async def main() -> list[str]:
        server = await loop.create_server(Bye, "127.0.0.1", 0, ssl=certs.server_context(),
                                          ssl_shutdown_timeout=1.0)
        port = server.sockets[0].getsockname()[1]
        transport, client = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=certs.client_context(), server_hostname="localhost")
        assert await client.lost is None
        assert bytes(client.data) == b"bye" * 100_000
        assert transport.is_closing()
        await finish(server)
        return client.events

    assert run(loop, main()) == ["made", "data", "eof", "lost"]


def test_start_tls_both_sides(aio: ModuleType, loop: Any, certs: Certs) -> None:
    upgraded: Any = loop.create_future()

    class StartTLSServer(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            if data == b"STARTTLS\r\n":
                self.transport.write(b"GO\r\n")
                loop.create_task(self.upgrade())
            else:
                self.tls.write(data[::-1])

        async def upgrade(self) -> None:
            self.tls = await loop.start_tls(self.transport, self, certs.server_context(),
                                            server_side=True)
            upgraded.set_result(self.tls)

    async def main() -> None:
        server = await loop.create_server(StartTLSServer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        plain, client = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port)
        plain.write(b"STARTTLS\r\n")
        await client.received(4)
        tls = await loop.start_tls(plain, client, certs.client_context(),
                                   server_hostname="localhost")
        server_tls = await upgraded
        assert tls.get_protocol() is client
        assert tls.get_extra_info("peercert") is not None
        assert server_tls.get_extra_info("ssl_object").server_side
        tls.write(b"encrypted")
        await client.received(4 + 9)
        assert bytes(client.data) == b"GO\r\ndetpyrcne"
        assert client.events == ["made", "data"]  # no second connection_made
        await finish(server, tls, client)

    run(loop, main())


def test_start_tls_wrong_arguments(aio: ModuleType, loop: Any, certs: Certs) -> None:
    async def main() -> None:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        plain, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tls_server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                              ssl=certs.server_context())
        tls_port = tls_server.sockets[0].getsockname()[1]
        tls, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", tls_port,
            ssl=certs.client_context(), server_hostname="localhost")
        # A TLS transport can itself be upgraded again (TLS in TLS), as on asyncio.
        assert tls._start_tls_compatible is True
        with pytest.raises(
            TypeError,
            match=r"^sslcontext is expected to be an instance of ssl\.SSLContext, got True$",
        ):
            await loop.start_tls(plain, asyncio.Protocol(), True)
        plain.close()
        tls.close()
        for srv in (server, tls_server):
            srv.close()
            await srv.wait_closed()

    run(loop, main())


def test_tls_in_tls_via_start_tls(aio: ModuleType, loop: Any, certs: Certs) -> None:
    inner_ready: Any = loop.create_future()
    # The client sends its inner hello only once the server is upgrading:
    # sent earlier, it would reach Outer.data_received (on asyncio as on
    # tidal), however soon after connection_made() the upgrade task runs.
    upgrading: Any = loop.create_future()

    class Outer(asyncio.Protocol):
        """Server: upgrades the already-TLS connection once more, then echoes."""

        def connection_made(self, transport: Any) -> None:
            loop.create_task(self.upgrade(transport))

        async def upgrade(self, transport: Any) -> None:
            upgrading.set_result(None)  # start_tls() swaps the protocol before it awaits
            self.inner = await loop.start_tls(transport, self, certs.server_context(),
                                              server_side=True)
            inner_ready.set_result(None)

        def data_received(self, data: bytes) -> None:
            self.inner.write(data)

    async def main() -> None:
        server = await loop.create_server(Outer, "127.0.0.1", 0, ssl=certs.server_context())
        port = server.sockets[0].getsockname()[1]
        outer, client = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=certs.client_context(), server_hostname="localhost")
        await upgrading
        inner = await loop.start_tls(outer, client, certs.client_context(),
                                     server_hostname="localhost")
        await inner_ready
        inner.write(b"nested")
        await client.received(6)
        assert bytes(client.data) == b"nested"
        await finish(server, inner, client)

    run(loop, main())


def test_stream_writer_start_tls(aio: ModuleType, loop: Any, certs: Certs) -> None:
    async def handle(reader: Any, writer: Any) -> None:
        assert await reader.readline() == b"upgrade\n"
        # Answer first: the client must not send its hello before we switch.
        writer.write(b"ok\n")
        await writer.start_tls(certs.server_context())
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await aio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.write(b"upgrade\n")
        assert await reader.readline() == b"ok\n"
        await writer.start_tls(certs.client_context(), server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"secret\n"
        await finish(server, writer=writer)

    run(loop, main())


def test_server_side_handshake_failure_leaves_server_running(
        aio: ModuleType, loop: Any, certs: Certs) -> None:
    async def main() -> None:
        server, port = await echo_server(loop, certs, [])
        # A plain-text client: the server's handshake fails, the server keeps serving.
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await reader.read() == b""  # the alert is not flushed, as on asyncio
        writer.close()
        transport, client = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=certs.client_context(), server_hostname="localhost")
        transport.write(b"still here")
        await client.received(10)
        await finish(server, transport, client)

    run(loop, main())


def test_sendfile_falls_back_over_tls(aio: ModuleType, loop: Any, certs: Certs,
                                      tmp_path: Any) -> None:
    payload = os.urandom(700_000)
    path = tmp_path / "blob"
    path.write_bytes(payload)

    async def main() -> None:
        received: list[bytes] = []
        done: Any = loop.create_future()

        class Sink(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                received.append(data)
                if sum(map(len, received)) == len(payload):
                    done.set_result(None)

        server = await loop.create_server(Sink, "127.0.0.1", 0, ssl=certs.server_context())
        port = server.sockets[0].getsockname()[1]
        transport, client = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=certs.client_context(), server_hostname="localhost")
        with open(path, "rb") as f:
            sent = await loop.sendfile(transport, f)
        assert sent == len(payload)
        await done
        assert b"".join(received) == payload
        assert transport.get_protocol() is client  # restored after the fallback
        assert transport.is_reading()
        await finish(server, transport, client)

    run(loop, main())


def test_connection_made_raising(aio: ModuleType, loop: Any, certs: Certs,
                                 errors: list[dict[str, Any]]) -> None:
    class Broken(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            raise ZeroDivisionError("in connection_made")

    async def main() -> Recorder:
        server, port = await echo_server(loop, certs, [])
        app = Broken(loop)
        with pytest.raises(ZeroDivisionError):
            await loop.create_connection(
                lambda: app, "127.0.0.1", port,
                ssl=certs.client_context(), server_hostname="localhost")
        assert isinstance(await app.lost, ZeroDivisionError)
        await finish(server)
        return app

    app = run(loop, main())
    assert app.events == ["made", "lost"]
    assert [c["message"] for c in errors] == [
        "Fatal error: protocol.buffer_updated() call failed."
    ]


def test_asyncio_streams_on_the_loop(dropin: Any, certs: Certs) -> None:
    """asyncio's own stream functions over TLS, on tidal's loop and on asyncio's."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline())[::-1])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                            ssl=certs.server_context())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=certs.client_context(), server_hostname="localhost")
        assert writer.get_extra_info("peercert") is not None
        writer.write(b"hello")
        writer.write(b" world\n")
        data = await reader.read()
        await finish(server, writer=writer)
        return data

    assert dropin(main()) == b"\ndlrow olleh"


def test_cancelled_connect_frees_everything(aio: ModuleType, loop: Any, certs: Certs,
                                            silent_server: tuple[str, int]) -> None:
    """A connect cancelled mid-handshake leaves no cycle: refcounting frees the context."""
    import gc
    import weakref

    async def main(ctx: ssl.SSLContext) -> None:
        with pytest.raises(TimeoutError):
            await aio.wait_for(loop.create_connection(
                asyncio.Protocol, *silent_server, ssl=ctx, server_hostname="localhost"), 0.05)

    ctx = certs.client_context()
    run(loop, main(ctx))
    ref = weakref.ref(ctx)
    del ctx
    gc.disable()  # only reference counting may free it
    try:
        assert ref() is None
    finally:
        gc.enable()

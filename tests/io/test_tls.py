"""tidal's TLS protocol, checked against asyncio's sslproto as the oracle.

Each behaviour test wires the SSLProtocol of the module under test (tidal's on
tidal, asyncio's on asyncio) over the same small socket transport from
``tls_support``, so the TLS layer is compared on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from tls_support import (
    BufRecorder,
    Certs,
    Recorder,
    SockTransport,
    shipped_certs,
    start_tls,
    wrap,
)

import tidal
from tidal._io.tls import SSLProtocol


@pytest.fixture(scope="session")
def certs() -> Certs:
    return shipped_certs()


@pytest.fixture
def errors(loop: Any) -> list[dict[str, Any]]:
    """Contexts passed to the loop's exception handler."""
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    return seen


@pytest.fixture
def socks() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


class Pair:
    """A TLS client and server over a socketpair, both on the loop under test."""

    def __init__(self, aio: ModuleType, loop: Any, certs: Certs,
                 socks: tuple[socket.socket, socket.socket], *,
                 client_app: Any = None, server_app: Any = None,
                 client_ctx: ssl.SSLContext | None = None,
                 server_ctx: ssl.SSLContext | None = None,
                 server_hostname: str | None = "localhost", **kw: Any) -> None:
        self.loop = loop
        self.client = client_app if client_app is not None else Recorder(loop)
        self.server = server_app if server_app is not None else Recorder(loop)
        cctx = client_ctx if client_ctx is not None else certs.client_context()
        sctx = server_ctx if server_ctx is not None else certs.server_context()
        self.cwaiter, self.cproto, self.craw = wrap(
            aio, loop, socks[0], self.client, cctx, server_hostname=server_hostname, **kw)
        self.swaiter, self.sproto, self.sraw = wrap(
            aio, loop, socks[1], self.server, sctx, server_side=True, **kw)

    async def handshake(self) -> None:
        await self.cwaiter
        await self.swaiter

    async def close_both(self) -> None:
        """Close the client side; wait until both ends lost their connection."""
        self.client.transport.close()
        await self.client.lost
        await self.server.lost


def run(loop: Any, coro: Any, timeout: float = 5.0) -> Any:
    """Run *coro*; a hang stops the loop (RuntimeError) instead of blocking the suite."""
    guard = loop.call_later(timeout, loop.stop)
    try:
        return loop.run_until_complete(coro)
    finally:
        guard.cancel()


# -- handshake and data ------------------------------------------------------------


def test_echo_and_extra_info(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        c, s = pair.client, pair.server
        assert c.events == ["made"] and s.events == ["made"]
        c.transport.write(b"hello ")
        c.transport.writelines([b"tls ", bytearray(b"world"), memoryview(b"!")])
        await s.received(16)
        s.transport.write(bytes(s.data))
        await c.received(16)
        assert bytes(c.data) == b"hello tls world!"

        ct = c.transport
        assert ct.get_extra_info("sslcontext") is pair.cproto._sslcontext
        sslobj = ct.get_extra_info("ssl_object")
        assert isinstance(sslobj, ssl.SSLObject)
        assert ct.get_extra_info("cipher") == sslobj.cipher()
        assert ct.get_extra_info("compression") is None
        peercert = ct.get_extra_info("peercert")
        assert dict(x[0] for x in peercert["subject"])["commonName"] == "localhost"
        assert s.transport.get_extra_info("peercert") is None
        assert ct.get_extra_info("socket") is socks[0]
        assert ct.get_extra_info("peername") == socks[0].getpeername()
        assert ct.get_extra_info("sockname") == socks[0].getsockname()
        assert ct.get_extra_info("nope", 7) == 7
        assert ct.get_protocol() is c
        assert ct.is_reading()
        assert not ct.is_closing()
        assert not ct.can_write_eof()
        with pytest.raises(NotImplementedError):
            ct.write_eof()
        assert ct.get_write_buffer_limits() == (128 * 1024, 512 * 1024)
        assert ct.get_read_buffer_limits() == (64 * 1024, 256 * 1024)
        assert ct.get_write_buffer_size() == 0
        assert ct.get_read_buffer_size() == 0
        assert ct._start_tls_compatible is True
        await pair.close_both()
        assert ct.get_extra_info("socket", "gone") == "gone"
        assert ct.get_extra_info("cipher") == sslobj.cipher()

    run(loop, main())


def test_app_events_order_and_waiter(aio: ModuleType, loop: Any, certs: Certs,
                                     socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)
    order: list[str] = []
    pair.cwaiter.add_done_callback(lambda f: order.append(f"waiter:{pair.client.events}"))

    async def main() -> None:
        await pair.handshake()
        await asyncio.sleep(0) if aio is asyncio else await aio.sleep(0)
        assert order == ["waiter:['made']"]
        await pair.close_both()

    run(loop, main())
    # The closing side, too, is told of the peer's close_notify.
    assert pair.client.events == ["made", "eof", "lost"]
    assert pair.server.events == ["made", "eof", "lost"]
    assert pair.client.exc is None and pair.server.exc is None


def test_write_before_handshake_is_buffered(aio: ModuleType, loop: Any, certs: Certs,
                                            socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)
    app_transport = pair.cproto._app_transport
    app_transport.write(b"lost")  # before connection_made(): dropped, as asyncio does
    assert app_transport.get_write_buffer_size() == 0

    async def main() -> None:
        await (asyncio.sleep(0) if aio is asyncio else aio.sleep(0))
        assert not pair.cwaiter.done()  # handshaking now
        app_transport.write(b"early")
        assert app_transport.get_write_buffer_size() == 5
        await pair.handshake()
        await pair.server.received(5)
        assert bytes(pair.server.data) == b"early"
        await pair.close_both()

    run(loop, main())


def test_large_transfer_both_ways(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    size = 3 * 1024 * 1024 + 17
    up = os.urandom(size)
    down = os.urandom(size)
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        c, s = pair.client, pair.server
        view = memoryview(up)
        for i in range(0, size, 100_000):  # many writes, some while paused
            c.transport.write(view[i:i + 100_000])
        s.transport.write(down)
        await c.received(size)
        await s.received(size)
        await pair.close_both()

    run(loop, main())
    assert bytes(pair.server.data) == up
    assert bytes(pair.client.data) == down
    # The writers went over the 512 KiB high-water mark and came back.
    assert pair.client.events.count("pause") == pair.client.events.count("resume") >= 1
    assert pair.server.events[-1] == "lost"


def test_buffered_app_protocol(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    size = 200_000
    payload = os.urandom(size)
    server = BufRecorder(loop, size=1000)
    pair = Pair(aio, loop, certs, socks, server_app=server)

    async def main() -> None:
        await pair.handshake()
        pair.client.transport.write(payload)
        await server.received(size)
        await pair.close_both()

    run(loop, main())
    assert bytes(server.data) == payload
    assert server.hints and all(h >= 0 for h in server.hints)
    assert server.events == ["made", "data", "eof", "lost"]


# -- verification and handshake failures ------------------------------------------------


def test_untrusted_certificate(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                               errors: list[dict[str, Any]]) -> None:
    pair = Pair(aio, loop, certs, socks, client_ctx=certs.untrusting_context())

    async def main() -> None:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await pair.cwaiter
        assert info.value.verify_message == "unable to get local issuer certificate"
        # The client's alert stays unsent: the server only sees the connection drop.
        with pytest.raises(ConnectionResetError):
            await pair.swaiter

    run(loop, main())
    assert pair.client.events == [] and pair.server.events == []
    assert errors == []  # SSLError is an OSError: logged only in debug mode


def test_hostname_mismatch(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                           errors: list[dict[str, Any]]) -> None:
    pair = Pair(aio, loop, certs, socks, server_hostname="example.com")

    async def main() -> None:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await pair.cwaiter
        assert "Hostname mismatch" in info.value.verify_message
        with pytest.raises(ConnectionResetError):
            await pair.swaiter

    run(loop, main())


def test_handshake_timeout(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                           errors: list[dict[str, Any]]) -> None:
    app = Recorder(loop)
    waiter, _, raw = wrap(aio, loop, socks[0], app, certs.client_context(),
                          server_hostname="localhost", ssl_handshake_timeout=0.05)

    async def main() -> None:
        with pytest.raises(ConnectionAbortedError) as info:
            await waiter
        assert str(info.value) == (
            "SSL handshake is taking longer than 0.05 seconds: aborting the connection"
        )
        assert raw.is_closing()

    run(loop, main())
    assert app.events == []
    assert errors == []  # an OSError: logged only in debug mode


def test_peer_gone_before_handshake(aio: ModuleType, loop: Any, certs: Certs,
                                    socks: Any) -> None:
    app = Recorder(loop)
    waiter, _, _ = wrap(aio, loop, socks[0], app, certs.client_context(),
                        server_hostname="localhost")
    socks[1].close()

    async def main() -> None:
        with pytest.raises(BrokenPipeError):
            await waiter

    run(loop, main())
    assert app.events == []


def test_eof_during_handshake(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    app = Recorder(loop)
    waiter, _, _ = wrap(aio, loop, socks[1], app, certs.server_context(), server_side=True)
    socks[0].shutdown(socket.SHUT_WR)

    async def main() -> None:
        with pytest.raises(ConnectionResetError) as info:
            await waiter
        assert info.value.args == ()

    run(loop, main())
    assert app.events == []


def test_garbage_from_peer(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                           errors: list[dict[str, Any]]) -> None:
    app = Recorder(loop)
    waiter, _, _ = wrap(aio, loop, socks[1], app, certs.server_context(), server_side=True)
    socks[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    async def main() -> None:
        with pytest.raises(ssl.SSLError) as info:
            await waiter
        assert info.value.reason in ("HTTP_REQUEST", "WRONG_VERSION_NUMBER")

    run(loop, main())
    assert errors == []


def test_constructor_validation(aio: ModuleType, loop: Any, certs: Certs) -> None:
    cls = __import__("tls_support").ssl_protocol_class(aio)
    app = Recorder(loop)
    ctx = certs.client_context()
    for kw, msg in [
        ({"ssl_handshake_timeout": 0}, "ssl_handshake_timeout should be a positive number, got 0"),
        ({"ssl_handshake_timeout": -1.5},
         "ssl_handshake_timeout should be a positive number, got -1.5"),
        ({"ssl_shutdown_timeout": 0}, "ssl_shutdown_timeout should be a positive number, got 0"),
    ]:
        with pytest.raises(ValueError) as info:
            cls(loop, app, ctx, None, **kw)
        assert str(info.value) == msg
    with pytest.raises(ValueError, match=r"^Server side SSL needs a valid SSLContext$"):
        cls(loop, app, None, None, server_side=True)
    # ssl=True on a client: a default context, hostname checks off without a name.
    proto = cls(loop, app, None, None)
    ctx2 = proto._get_extra_info("sslcontext")
    assert isinstance(ctx2, ssl.SSLContext) and not ctx2.check_hostname
    assert ctx2.verify_mode == ssl.CERT_REQUIRED
    proto2 = cls(loop, app, None, None, server_hostname="example.com")
    assert proto2._get_extra_info("sslcontext").check_hostname
    assert proto2._get_app_transport() is proto2._app_transport
    for p in (proto, proto2):
        p._app_transport._closed = True  # never connected: no ResourceWarning


# -- shutdown ----------------------------------------------------------------------------


def test_close_flushes_then_close_notify(aio: ModuleType, loop: Any, certs: Certs,
                                         socks: Any) -> None:
    payload = os.urandom(1_500_000)
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        pair.client.transport.write(payload)
        pair.client.transport.close()
        assert pair.client.transport.is_closing()
        pair.client.transport.write(b"dropped")  # after close: silently ignored
        await pair.server.eof
        await pair.server.lost
        await pair.client.lost

    run(loop, main())
    assert bytes(pair.server.data) == payload
    assert pair.server.events[-2:] == ["eof", "lost"]
    assert pair.client.events[-2:] == ["eof", "lost"]
    assert pair.client.exc is None and pair.server.exc is None


def test_server_closes_first(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        pair.server.transport.write(b"bye")
        pair.server.transport.close()
        await pair.client.lost
        await pair.server.lost

    run(loop, main())
    assert bytes(pair.client.data) == b"bye"
    assert pair.client.events == ["made", "data", "eof", "lost"]
    assert pair.server.events == ["made", "eof", "lost"]


def test_shutdown_timeout(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks, ssl_shutdown_timeout=0.05)

    async def main() -> None:
        await pair.handshake()
        pair.sraw.pause_reading()  # the server never answers close_notify
        pair.client.transport.close()
        exc = await pair.client.lost
        assert type(exc) is asyncio.TimeoutError
        assert str(exc) == "SSL shutdown timed out"
        pair.server.transport.abort()
        await pair.server.lost

    run(loop, main())


def test_abort(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        pair.client.transport.write(b"x" * 10)
        pair.client.transport.abort()
        assert pair.client.transport.is_closing()
        assert await pair.client.lost is None
        await pair.server.lost

    run(loop, main())
    assert pair.client.events == ["made", "lost"]
    # No close_notify; the unread session tickets make the close a reset.
    assert pair.server.events == ["made", "data", "lost"]
    assert isinstance(pair.server.exc, ConnectionResetError)


def test_close_during_handshake_aborts(aio: ModuleType, loop: Any, certs: Certs,
                                       socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await (asyncio.sleep(0) if aio is asyncio else aio.sleep(0))
        pair.cproto._app_transport.close()
        assert pair.craw.is_closing()
        # Aborted: the connector's waiter completes with connection_lost(None).
        assert await pair.cwaiter is None
        with pytest.raises(ConnectionResetError):
            await pair.swaiter

    run(loop, main())
    assert pair.client.events == []


def test_close_twice_and_write_after_close_warns(aio: ModuleType, loop: Any, certs: Certs,
                                                 socks: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        t = pair.client.transport
        t.close()
        for _ in range(7):
            t.write(b"late")
        t.close()
        assert t.is_closing()
        assert t._ssl_protocol is None  # as asyncio: the second close forgets it
        await pair.client.lost
        await pair.server.lost

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(loop, main())
    warnings_ = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert warnings_ == ["SSL connection is closed"] * 2


def test_eof_received_true_warns(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                                 caplog: pytest.LogCaptureFixture) -> None:
    class KeepOpen(Recorder):
        def eof_received(self) -> bool:  # type: ignore[override]
            super().eof_received()
            return True

    pair = Pair(aio, loop, certs, socks, server_app=KeepOpen(loop))

    async def main() -> None:
        await pair.handshake()
        pair.client.transport.close()
        await pair.server.lost
        await pair.client.lost

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(loop, main())
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == [
        "returning true from eof_received() has no effect when using ssl"
    ]


# -- app errors ------------------------------------------------------------------------------


def test_error_in_data_received(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                                errors: list[dict[str, Any]]) -> None:
    class Boom(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError("boom")

    pair = Pair(aio, loop, certs, socks, server_app=Boom(loop))

    async def main() -> None:
        await pair.handshake()
        pair.client.transport.write(b"x")
        exc = await pair.server.lost
        assert isinstance(exc, ZeroDivisionError)
        await pair.client.lost

    run(loop, main())
    assert [c["message"] for c in errors] == ["Fatal error on SSL protocol"]
    assert errors[0]["protocol"] is pair.sproto
    assert errors[0]["transport"] is pair.sraw
    assert pair.client.events[-2:] == ["eof", "lost"]


def test_error_in_eof_received(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                               errors: list[dict[str, Any]]) -> None:
    class Boom(Recorder):
        def eof_received(self) -> None:
            raise ZeroDivisionError("eof boom")

    pair = Pair(aio, loop, certs, socks, server_app=Boom(loop))

    async def main() -> None:
        await pair.handshake()
        pair.client.transport.close()
        exc = await pair.server.lost
        assert isinstance(exc, ZeroDivisionError)
        await pair.client.lost

    run(loop, main())
    assert [c["message"] for c in errors] == ["Error calling eof_received()"]


def test_pause_writing_failure_is_reported(aio: ModuleType, loop: Any, certs: Certs,
                                           socks: Any, errors: list[dict[str, Any]]) -> None:
    class Boom(Recorder):
        def pause_writing(self) -> None:
            raise ZeroDivisionError("pause")

        def resume_writing(self) -> None:
            raise ZeroDivisionError("resume")

    pair = Pair(aio, loop, certs, socks, client_app=Boom(loop))

    async def main() -> None:
        await pair.handshake()
        t = pair.client.transport
        t.set_write_buffer_limits(high=0)
        assert t.get_write_buffer_limits() == (0, 0)
        t.write(b"y" * 100)
        await pair.server.received(100)
        await pair.close_both()

    run(loop, main())
    # high=0: every flush flips the (failing) protocol between paused and resumed.
    assert [c["message"] for c in errors] == [
        "protocol.pause_writing() failed", "protocol.resume_writing() failed",
    ] * 3
    assert errors[0]["transport"] is pair.client.transport
    assert errors[0]["protocol"] is pair.cproto


# -- flow control ----------------------------------------------------------------------------


def test_write_buffer_limits_validation(aio: ModuleType, loop: Any, certs: Certs,
                                        socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)
    t = pair.cproto._app_transport
    with pytest.raises(ValueError, match=r"^high \(1\) must be >= low \(2\) must be >= 0$"):
        t.set_write_buffer_limits(high=1, low=2)
    with pytest.raises(ValueError, match=r"^high \(-4\) must be >= low \(-1\) must be >= 0$"):
        t.set_read_buffer_limits(low=-1)
    t.set_write_buffer_limits(low=100)
    assert t.get_write_buffer_limits() == (100, 400)
    t.set_read_buffer_limits(high=1000)
    assert t.get_read_buffer_limits() == (250, 1000)
    with pytest.raises(TypeError, match=r"^data: expecting a bytes-like instance, got str$"):
        t.write("text")
    t.write(b"")
    assert t.get_write_buffer_size() == 0

    async def main() -> None:
        await pair.handshake()
        await pair.close_both()

    run(loop, main())


def test_write_flow_control(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        t = pair.client.transport
        t.set_write_buffer_limits(high=64 * 1024, low=1024)
        pair.sraw.pause_reading()  # the socket fills up, then the lower transport's buffer
        block = b"z" * 16384
        for _ in range(100):
            t.write(block)
            if "pause" in pair.client.events:
                break
        assert pair.client.events == ["made", "pause"]
        assert t._protocol_paused
        assert t.get_write_buffer_size() >= 64 * 1024
        pair.sraw.resume_reading()
        await pair.server.received(len(block) * (1 + _))
        assert pair.client.events == ["made", "pause", "resume"]
        assert t.get_write_buffer_size() == 0
        await pair.close_both()

    run(loop, main())


def test_read_flow_control(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)
    size = 600_000

    async def main() -> None:
        await pair.handshake()
        ct = pair.client.transport
        ct.set_read_buffer_limits(high=32 * 1024)
        ct.pause_reading()
        assert not ct.is_reading()
        pair.server.transport.write(b"r" * size)
        sleep = asyncio.sleep if aio is asyncio else aio.sleep
        for _ in range(200):
            await sleep(0.001)
            if not pair.craw.is_reading():
                break
        # Undecrypted data piled up past the high-water mark: the socket is paused.
        assert not pair.craw.is_reading()
        assert ct.get_read_buffer_size() >= 32 * 1024
        assert pair.client.data == b""
        ct.resume_reading()
        assert ct.is_reading()
        await pair.client.received(size)
        assert pair.craw.is_reading()
        await pair.close_both()

    run(loop, main())
    assert bytes(pair.client.data) == b"r" * size


def test_eof_while_app_paused(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        ct = pair.client.transport
        ct.pause_reading()
        pair.server.transport.write(b"last words")
        pair.server.transport.close()
        sleep = asyncio.sleep if aio is asyncio else aio.sleep
        await sleep(0.02)
        assert pair.client.events == ["made"]
        ct.resume_reading()
        await pair.client.lost
        await pair.server.lost

    run(loop, main())
    assert bytes(pair.client.data) == b"last words"
    assert pair.client.events == ["made", "data", "eof", "lost"]


# -- protocol switching and start_tls -----------------------------------------------------------


def test_set_protocol(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)
    second = BufRecorder(loop, size=7)

    async def main() -> None:
        await pair.handshake()
        pair.server.transport.set_protocol(second)
        assert pair.server.transport.get_protocol() is second
        pair.client.transport.write(b"0123456789abcdefghij")
        await second.received(20)
        pair.client.transport.close()
        await pair.client.lost
        await second.lost

    run(loop, main())
    assert bytes(second.data) == b"0123456789abcdefghij"
    assert pair.server.data == b""
    assert second.events == ["data", "eof", "lost"]
    assert second.hints[0] > 0  # the ciphertext pending, as a size hint


def test_start_tls_both_sides(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    client, server = Recorder(loop), Recorder(loop)
    craw = SockTransport(loop, socks[0], client)
    sraw = SockTransport(loop, socks[1], server)

    async def main() -> None:
        craw.write(b"plain")
        await server.received(5)
        client_tls, _ = await asyncio.gather(
            start_tls(aio, loop, craw, client, certs.client_context(),
                      server_hostname="localhost"),
            start_tls(aio, loop, sraw, server, certs.server_context(), server_side=True),
        ) if aio is asyncio else await aio.gather(
            start_tls(aio, loop, craw, client, certs.client_context(),
                      server_hostname="localhost"),
            start_tls(aio, loop, sraw, server, certs.server_context(), server_side=True),
        )
        # call_connection_made=False: the protocols are not told again.
        assert client.events == ["made"] and server.events == ["made", "data"]
        assert client_tls.get_protocol() is client
        assert client_tls.get_extra_info("peercert") is not None
        client_tls.write(b"encrypted")
        await server.received(5 + 9)
        assert bytes(server.data) == b"plainencrypted"
        client_tls.close()
        await server.lost
        await client.lost

    run(loop, main())
    assert server.events == ["made", "data", "eof", "lost"]


# -- ordering and batching -----------------------------------------------------------------------


def test_global_event_order(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    log: list[str] = []
    pair = Pair(aio, loop, certs, socks)
    for name, app in (("c", pair.client), ("s", pair.server)):
        app.name, app.log = name, log
    pair.cwaiter.add_done_callback(lambda f: log.append("c:waiter"))
    pair.swaiter.add_done_callback(lambda f: log.append("s:waiter"))

    async def main() -> None:
        await pair.handshake()
        log.append("handshaken")
        pair.client.transport.write(b"ping")
        await pair.server.received(4)
        pair.server.transport.write(b"pong")
        pair.server.transport.close()
        await pair.client.lost
        await pair.server.lost

    run(loop, main())
    assert log == [
        "c:made", "c:waiter", "s:made", "s:waiter", "handshaken", "s:data", "c:data",
        "c:eof", "s:eof", "c:lost", "s:lost",
    ]


def test_burst_of_records_is_one_delivery(aio: ModuleType, loop: Any, certs: Certs,
                                          socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        pair.sraw.pause_reading()
        for i in range(50):
            pair.client.transport.write(b"%05d" % i)
        await (asyncio.sleep(0.01) if aio is asyncio else aio.sleep(0.01))
        pair.sraw.resume_reading()
        await pair.server.received(250)
        await pair.close_both()

    run(loop, main())
    assert bytes(pair.server.data) == b"".join(b"%05d" % i for i in range(50))
    assert pair.server.chunks == [250]  # 50 records, decrypted in one go


def test_tls12(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    pair = Pair(aio, loop, certs, socks, client_ctx=ctx)
    payload = os.urandom(300_000)

    async def main() -> None:
        await pair.handshake()
        assert pair.client.transport.get_extra_info("ssl_object").version() == "TLSv1.2"
        pair.client.transport.write(payload)
        await pair.server.received(len(payload))
        pair.server.transport.write(payload)
        await pair.client.received(len(payload))
        await pair.close_both()

    run(loop, main())
    assert bytes(pair.client.data) == bytes(pair.server.data) == payload
    assert pair.client.events == ["made", "data", "eof", "lost"]


def test_post_handshake_auth(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    # A read that must answer (TLS 1.3 CertificateRequest after the handshake):
    # what decrypting produces goes out without any application write.
    cctx, sctx = certs.post_handshake_auth_contexts()
    pair = Pair(aio, loop, certs, socks, client_ctx=cctx, server_ctx=sctx)

    async def main() -> None:
        await pair.handshake()
        st = pair.server.transport
        sslobj = st.get_extra_info("ssl_object")
        assert sslobj.getpeercert() is None
        sslobj.verify_client_post_handshake()
        st.write(b"who are you?")  # flushes the request along with the data
        await pair.client.received(12)
        sleep = asyncio.sleep if aio is asyncio else aio.sleep
        for _ in range(200):  # the client answers on its own, without writing
            if sslobj.getpeercert():
                break
            await sleep(0.001)
        subject = dict(x[0] for x in sslobj.getpeercert()["subject"])
        assert subject["commonName"] == "localhost"
        assert st.get_extra_info("peercert") is None  # as asyncio: set at handshake time
        await pair.close_both()

    run(loop, main())


def test_get_buffer_sizes(aio: ModuleType, loop: Any, certs: Certs) -> None:
    cls = __import__("tls_support").ssl_protocol_class(aio)
    proto = cls(loop, Recorder(loop), certs.client_context(), None)
    assert len(proto.get_buffer(-1)) == 256 * 1024
    assert len(proto.get_buffer(0)) == 256 * 1024
    assert len(proto.get_buffer(10)) == 256 * 1024
    assert len(proto.get_buffer(10**9)) == 256 * 1024
    assert isinstance(proto, asyncio.BufferedProtocol)
    proto._app_transport._closed = True


def test_app_transport_after_loss(aio: ModuleType, loop: Any, certs: Certs, socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        t = pair.client.transport
        await pair.close_both()
        assert t.is_closing()
        assert t.get_protocol() is None
        assert pair.cproto._app_transport is None
        with pytest.raises(RuntimeError, match=r"^Creating _SSLProtocolTransport twice$"):
            pair.cproto._get_app_transport()

    run(loop, main())


def test_unclosed_transport_warns(aio: ModuleType, loop: Any, certs: Certs) -> None:
    cls = __import__("tls_support").ssl_protocol_class(aio)
    proto = cls(loop, Recorder(loop), certs.client_context(), None)
    transport = proto._app_transport
    proto._app_transport = None
    with pytest.warns(ResourceWarning) as record:
        del transport
        import gc
        gc.collect()
    assert str(record[0].message) == "unclosed transport <asyncio._SSLProtocolTransport object>"


def test_debug_logging(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                       caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    pair = Pair(aio, loop, certs, socks, client_ctx=certs.untrusting_context())

    async def main() -> None:
        with pytest.raises(ssl.SSLCertVerificationError):
            await pair.cwaiter
        with pytest.raises(ConnectionResetError):
            await pair.swaiter

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(loop, main())
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    starts = [m for m in messages if m.endswith("starts SSL handshake")]
    assert len(starts) == 2
    failures = [m.split(": ", 1)[1] for m in messages if "SSL handshake failed" in m]
    # The server, seeing the connection drop mid-handshake, logs its own failure.
    assert failures == ["SSL handshake failed on verifying the certificate", "SSL handshake failed"]
    assert any(m.endswith("received EOF") for m in messages)
    failure_record = next(r for r in caplog.records if "verifying" in r.getMessage())
    assert failure_record.exc_info is not None
    assert failure_record.exc_info[0] is ssl.SSLCertVerificationError


def test_debug_logs_handshake_time(aio: ModuleType, loop: Any, certs: Certs, socks: Any,
                                   caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        await pair.close_both()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(loop, main())
    took = [r.getMessage() for r in caplog.records if "SSL handshake took" in r.getMessage()]
    assert len(took) == 2 and all(m.endswith(" ms") for m in took)


# -- tidal only: paths asyncio's sslproto does not have ------------------------------------------


def test_lower_transport_without_get_buffer(loop: Any, aio: ModuleType, certs: Certs,
                                            socks: Any) -> None:
    if aio is not tidal:
        pytest.skip("asyncio's SSLProtocol has no data_received()")
    client, server = Recorder(loop), Recorder(loop)
    cw = loop.create_future()
    sw = loop.create_future()
    cproto = SSLProtocol(loop, client, certs.client_context(), cw, server_hostname="localhost")
    sproto = SSLProtocol(loop, server, certs.server_context(), sw, server_side=True)
    SockTransport(loop, socks[0], cproto, use_get_buffer=False)
    SockTransport(loop, socks[1], sproto, use_get_buffer=False)
    payload = os.urandom(1_000_000)

    async def main() -> None:
        await cw
        await sw
        client.transport.write(payload)
        await server.received(len(payload))
        client.transport.close()
        await client.lost
        await server.lost

    run(loop, main())
    assert bytes(server.data) == payload
    assert server.events == ["made", "data", "eof", "lost"]


def test_bytearray_app_buffer_loses_nothing(loop: Any, aio: ModuleType, certs: Certs,
                                            socks: Any) -> None:
    # asyncio slices the application's buffer to continue a read; slicing a
    # bytearray copies, so asyncio would decrypt into a temporary and lose it.
    if aio is not tidal:
        pytest.skip("asyncio corrupts data here")

    class ArrayRecorder(BufRecorder):
        def get_buffer(self, sizehint: int) -> bytearray:  # type: ignore[override]
            return self.buf

    server = ArrayRecorder(loop, size=64 * 1024)
    pair = Pair(aio, loop, certs, socks, server_app=server)
    payload = b"".join(b"%06d" % i for i in range(20_000))

    async def main() -> None:
        await pair.handshake()
        pair.sraw.pause_reading()
        for i in range(0, len(payload), 1000):
            pair.client.transport.write(payload[i:i + 1000])
        await aio.sleep(0.01)
        pair.sraw.resume_reading()
        await server.received(len(payload))
        await pair.close_both()

    run(loop, main())
    assert bytes(server.data) == payload


def test_write_wants_read_keeps_backlog(loop: Any, aio: ModuleType, certs: Certs,
                                        socks: Any) -> None:
    # During a renegotiation SSL_write() asks for a read first; the data stays
    # queued and goes out after the next incoming record.
    if aio is not tidal:
        pytest.skip("patches tidal internals")
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        proto = pair.cproto
        real_write = proto._sslobj_write
        calls: list[int] = []

        def flaky_write(data: Any) -> int:
            calls.append(len(data))
            if len(calls) == 1:
                raise ssl.SSLWantReadError("want read")
            if len(calls) == 2:
                return int(real_write(memoryview(data)[:3]))  # a partial write
            return int(real_write(data))

        proto._sslobj_write = flaky_write
        t = pair.client.transport
        t.write(b"held back")
        assert t.get_write_buffer_size() == 9
        assert pair.server.data == b""
        pair.server.transport.write(b"wake")
        await pair.client.received(4)
        await pair.server.received(9)
        assert calls == [9, 9, 6]
        assert t.get_write_buffer_size() == 0
        await pair.close_both()

    run(loop, main())
    assert bytes(pair.server.data) == b"held back"


def test_bad_state_switch(loop: Any, aio: ModuleType, certs: Certs) -> None:
    if aio is not tidal:
        pytest.skip("tidal's state table")
    proto = SSLProtocol(loop, Recorder(loop), certs.client_context(), None)
    proto._app_transport._closed = True
    with pytest.raises(RuntimeError, match=(
        r"^cannot switch state from SSLProtocolState.UNWRAPPED to SSLProtocolState.WRAPPED$"
    )):
        proto._set_state(2)


def test_one_lower_write_per_app_write(loop: Any, aio: ModuleType, certs: Certs,
                                       socks: Any) -> None:
    pair = Pair(aio, loop, certs, socks)

    async def main() -> None:
        await pair.handshake()
        before = pair.craw.writes
        pair.client.transport.write(b"a" * 100_000)  # several records, one socket write
        pair.client.transport.writelines([b"b" * 10, b"c" * 10, b"d" * 10])
        assert pair.craw.writes - before == 2
        await pair.server.received(100_030)
        await pair.close_both()

    run(loop, main())

"""tidal's TLS protocol: handshake, data, shutdown and errors, against asyncio's sslproto.

Each behaviour test wires the SSLProtocol of the module under test (tidal's on
tidal, asyncio's on asyncio) over the same small socket transport from
``tls_support``, so the TLS layer is compared on its own.  Flow control,
ordering and tidal's internals are in ``test_tls_flow.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from types import ModuleType
from typing import Any

import pytest
from tls_support import (
    BufRecorder,
    Certs,
    Pair,
    Recorder,
    run,
    wrap,
)

# The shared fixtures: certs, errors, socks.
pytest_plugins = ("tls_fixtures",)


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

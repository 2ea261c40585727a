"""tidal's TLS protocol: flow control, ordering, batching and internals.

Wired as in ``test_tls.py``: tidal's SSLProtocol on tidal, asyncio's on
asyncio, over the test transport of ``tls_support``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from types import ModuleType
from typing import Any

import pytest
from tls_support import (
    BufRecorder,
    Certs,
    Pair,
    Recorder,
    SockTransport,
    run,
    start_tls,
)

import tidal
from tidal._io.tls import SSLProtocol

# The shared fixtures: certs, errors, socks.
pytest_plugins = ("tls_fixtures",)


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

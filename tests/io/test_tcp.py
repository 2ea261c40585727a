"""Stream socket transports over TCP: echo, half-close, errors, closing from callbacks."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from types import ModuleType
from typing import Any

import pytest


class Recorder(asyncio.Protocol):
    """Records every protocol event; optional hooks act on them."""

    def __init__(self, loop: Any, on_data: Any = None, on_made: Any = None,
                 keep_open: bool | None = None) -> None:
        self.events: list[Any] = []
        self.data = bytearray()
        self.lost = loop.create_future()
        self.on_data = on_data
        self.on_made = on_made
        self.keep_open = keep_open
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")
        if self.on_made:
            self.on_made(self, transport)

    def data_received(self, data: bytes) -> None:
        self.events.append("data")
        self.data += data
        if self.on_data:
            self.on_data(self, data)

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return self.keep_open

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)


def _dedupe(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    for e in events:
        if not (out and e == "data" and out[-1] == "data"):
            out.append(e)
    return out


async def _server(loop: Any, factory: Any) -> tuple[Any, int]:
    srv = await loop.create_server(factory, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_echo_and_event_order(loop: Any) -> None:
    async def main() -> tuple[list[Any], list[Any], bytes]:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            p = Recorder(loop, on_data=lambda p, d: p.transport.write(d))
            servers.append(p)
            return p

        srv, port = await _server(loop, factory)
        got = loop.create_future()

        def on_data(p: Recorder, d: bytes) -> None:
            if len(p.data) >= 11 and not got.done():
                got.set_result(None)

        tr, cp = await loop.create_connection(lambda: Recorder(loop, on_data=on_data),
                                              "127.0.0.1", port)
        assert cp.events == ["made"]
        tr.write(b"hello ")
        tr.writelines([b"wor", bytearray(b"l"), memoryview(b"d")])
        await got
        tr.close()
        await cp.lost
        await servers[0].lost
        srv.close()
        await srv.wait_closed()
        return _dedupe(cp.events), _dedupe(servers[0].events), bytes(cp.data)

    client, server, data = loop.run_until_complete(main())
    assert data == b"hello world"
    assert client == ["made", "data", ("lost", None)]
    assert server == ["made", "data", "eof", ("lost", None)]


def test_half_close(loop: Any) -> None:
    async def main() -> tuple[bytes, list[Any]]:
        def on_eof_server() -> Recorder:
            p = Recorder(loop, keep_open=True)
            return p

        servers: list[Recorder] = []

        def factory() -> Recorder:
            p = on_eof_server()
            servers.append(p)
            return p

        srv, port = await _server(loop, factory)
        tr, cp = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        assert tr.can_write_eof()
        tr.write(b"request")
        tr.write_eof()
        tr.write_eof()  # idempotent
        with pytest.raises(RuntimeError, match=r"^Cannot call write\(\) after write_eof\(\)$"):
            tr.write(b"more")
        while not servers or "eof" not in servers[0].events:
            await asyncio.sleep(0.001)
        sp = servers[0]
        assert bytes(sp.data) == b"request"
        # The server still writes after the client's EOF, then closes.
        sp.transport.write(b"reply")
        sp.transport.close()
        await cp.lost
        srv.close()
        await srv.wait_closed()
        return bytes(cp.data), _dedupe(cp.events)

    data, events = loop.run_until_complete(main())
    assert data == b"reply"
    assert events == ["made", "data", "eof", ("lost", None)]


def test_peer_reset(loop: Any) -> None:
    async def main() -> Any:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with listener:
            tr, cp = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1",
                                                  listener.getsockname()[1])
            conn, _ = listener.accept()
            # SO_LINGER 0: close() sends a RST instead of a FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            exc = await cp.lost
            return type(exc), tr.is_closing(), _dedupe(cp.events)

    exc_type, closing, events = loop.run_until_complete(main())
    assert exc_type is ConnectionResetError
    assert closing
    assert events == ["made", ("lost", "ConnectionResetError")]


def test_connection_refused_message(aio: ModuleType, loop: Any) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConnectionRefusedError) as info:
        loop.run_until_complete(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
    assert str(info.value) == f"[Errno 111] Connect call failed ('127.0.0.1', {port})"


def test_connect_timeout_closes_socket(aio: ModuleType, loop: Any, fd_count: Any) -> None:
    # A listener that never accepts, its queue full: further SYNs go unanswered.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    before = fd_count()
    try:
        with pytest.raises(TimeoutError):
            loop.run_until_complete(aio.wait_for(
                loop.create_connection(asyncio.Protocol, "127.0.0.1", port), 0.05))
        assert fd_count() == before
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_close_from_connection_made(loop: Any) -> None:
    async def main() -> list[Any]:
        srv, port = await _server(loop, asyncio.Protocol)
        tr, cp = await loop.create_connection(
            lambda: Recorder(loop, on_made=lambda p, t: (t.write(b"bye"), t.close())),
            "127.0.0.1", port)
        await cp.lost
        tr.close()  # a second close() does nothing
        tr.abort()
        srv.close()
        await srv.wait_closed()
        return cp.events

    assert loop.run_until_complete(main()) == ["made", ("lost", None)]


@pytest.mark.parametrize("how", ["close", "abort"])
def test_close_from_data_received(loop: Any, how: str) -> None:
    async def main() -> tuple[list[Any], bytes]:
        def on_data(p: Recorder, d: bytes) -> None:
            getattr(p.transport, how)()
            p.transport.write(b"ignored")  # after close: dropped, no error

        srv_protos: list[Recorder] = []

        def factory() -> Recorder:
            p = Recorder(loop, on_data=on_data)
            srv_protos.append(p)
            return p

        srv, port = await _server(loop, factory)
        tr, cp = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"x" * 10)
        await srv_protos[0].lost
        await cp.lost
        srv.close()
        await srv.wait_closed()
        return srv_protos[0].events, bytes(cp.data)

    events, data = loop.run_until_complete(main())
    assert events == ["made", "data", ("lost", None)]
    assert data == b""  # once close() found nothing buffered, writes are dropped


def test_data_received_error_is_reported(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main() -> Any:
        def boom(p: Recorder, d: bytes) -> None:
            raise ZeroDivisionError("bad protocol")

        srv, port = await _server(
            loop, lambda: Recorder(loop, on_made=lambda p, t: t.write(b"data")))
        _tr, cp = await loop.create_connection(lambda: Recorder(loop, on_data=boom),
                                              "127.0.0.1", port)
        exc = await cp.lost
        srv.close()
        await srv.wait_closed()
        return exc

    exc = loop.run_until_complete(main())
    assert isinstance(exc, ZeroDivisionError)
    assert [c["message"] for c in contexts] == [
        "Fatal error: protocol.data_received() call failed."
    ]
    assert contexts[0]["exception"] is exc


def test_transport_api(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        srv, port = await _server(loop, asyncio.Protocol)
        tr, cp = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        sock = tr.get_extra_info("socket")
        assert repr(sock).startswith("<asyncio.TransportSocket fd=")
        assert sock.gettimeout() == 0
        with pytest.raises(
            ValueError,
            match=r"^settimeout\(\): only 0 timeout is allowed on transport sockets$",
        ):
            sock.settimeout(1)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("nope", 42) == 42
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert repr(tr) == f"<_SelectorSocketTransport fd={sock.fileno()} read=polling " \
                           "write=<idle, bufsize=0>>"
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(high=100)
        assert tr.get_write_buffer_limits() == (25, 100)
        tr.set_write_buffer_limits(low=10)
        assert tr.get_write_buffer_limits() == (10, 40)
        with pytest.raises(ValueError, match=r"^high \(1\) must be >= low \(2\) must be >= 0$"):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(
            TypeError,
            match=r"^data argument must be a bytes-like object, not 'str'$",
        ):
            tr.write("text")
        tr.write(b"")  # nothing to do
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        assert "read=idle" in repr(tr)
        tr.resume_reading()
        assert tr.is_reading()
        used = "^" + re.escape(f"File descriptor {sock.fileno()} is used by transport {tr!r}") + "$"
        with pytest.raises(RuntimeError, match=used):
            loop.add_reader(sock.fileno(), lambda: None)
        with pytest.raises(RuntimeError, match=used):
            loop.remove_writer(sock.fileno())
        assert tr.get_protocol() is cp
        tr.close()
        assert tr.is_closing()
        assert not tr.is_reading()
        assert "closing" in repr(tr)
        await cp.lost
        assert repr(tr).startswith("<_SelectorSocketTransport closed fd=")
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())


def test_buffered_protocol(loop: Any) -> None:
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(7)
            self.got = bytearray()
            self.sizes: list[int] = []
            self.done = loop.create_future()

        def get_buffer(self, sizehint: int) -> memoryview:
            self.sizes.append(sizehint)
            return memoryview(self.buf)

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(bytes(self.got))

    async def main() -> tuple[bytes, set[int]]:
        def on_made(p: Recorder, t: Any) -> None:
            t.write(b"0123456789" * 10)
            t.close()

        srv, port = await _server(loop, lambda: Recorder(loop, on_made=on_made))
        _tr, proto = await loop.create_connection(Buffered, "127.0.0.1", port)
        got = await proto.done
        srv.close()
        await srv.wait_closed()
        return got, set(proto.sizes)

    got, sizes = loop.run_until_complete(main())
    assert got == b"0123456789" * 10
    assert sizes == {-1}


def test_create_connection_argument_errors(loop: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"host": "h", "port": 1, "server_hostname": "x"},
         "server_hostname is only meaningful with ssl"),
        ({"host": "h", "port": 1, "ssl_handshake_timeout": 1},
         "ssl_handshake_timeout is only meaningful with ssl"),
        ({"host": "h", "port": 1, "ssl_shutdown_timeout": 1},
         "ssl_shutdown_timeout is only meaningful with ssl"),
        ({"port": 1, "ssl": True}, "You must set server_hostname when using ssl without a host"),
        ({}, "host and port was not specified and no sock specified"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
            loop.run_until_complete(loop.create_connection(asyncio.Protocol, **kwargs))
    s = socket.socket()
    with s:
        with pytest.raises(
            ValueError,
            match=r"^host/port and sock can not be specified at the same time$",
        ):
            loop.run_until_complete(loop.create_connection(asyncio.Protocol, "h", 1, sock=s))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with u:
        with pytest.raises(ValueError, match="^" + re.escape(
                f"A Stream Socket was expected, got {u!r}") + "$"):
            loop.run_until_complete(loop.create_connection(asyncio.Protocol, sock=u))


def test_multiple_failures_combined(loop: Any) -> None:
    ports = []
    for _ in range(2):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        ports.append(probe.getsockname()[1])
        probe.close()

    async def main() -> None:
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", ports[0],
                                     local_addr=("127.0.0.2", 0))

    # One address, one failure: raised as is.
    with pytest.raises(ConnectionRefusedError):
        loop.run_until_complete(main())


def test_happy_eyeballs(loop: Any) -> None:
    async def main() -> bytes:
        def on_made(p: Recorder, t: Any) -> None:
            t.write(b"hi")
            t.close()

        srv, port = await _server(loop, lambda: Recorder(loop, on_made=on_made))
        _tr, cp = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              happy_eyeballs_delay=0.01)
        await cp.lost
        srv.close()
        await srv.wait_closed()
        return bytes(cp.data)

    assert loop.run_until_complete(main()) == b"hi"


def test_connect_accepted_socket(loop: Any) -> None:
    async def main() -> bytes:
        a, b = socket.socketpair()
        _tr, proto = await loop.connect_accepted_socket(lambda: Recorder(loop), a)
        b.sendall(b"ping")
        b.close()
        await proto.lost
        return bytes(proto.data)

    assert loop.run_until_complete(main()) == b"ping"


def test_bulk_reads_share_a_buffer_without_mixing_data(virtual_loop: Any) -> None:
    # Two connections stream at once in both directions: reads that come back
    # full go through the thread's shared buffer, and every chunk handed to
    # data_received() is its own bytes object, whole and in order.  (On tidal
    # the polls run on virtual time: a poll's sleep ends at once while data
    # flows, and time moves only once the connections are quiet.)
    import os

    loop = virtual_loop

    payloads = [os.urandom(3 * 1024 * 1024 + 123) for _ in range(4)]

    async def main() -> list[bytes]:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            p = Recorder(loop)
            servers.append(p)
            return p

        srv, port = await _server(loop, factory)
        clients = []
        for _ in range(2):
            clients.append(await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port))
        chunks: list[Any] = []
        for p in [cp for _, cp in clients] + servers:
            orig = p.data_received

            def data_received(data: bytes, orig: Any = orig) -> None:
                chunks.append(data)
                orig(data)

            p.data_received = data_received  # type: ignore[method-assign]
        for i, (tr, _) in enumerate(clients):
            tr.write(payloads[i])
            servers[i].transport.write(payloads[2 + i])
        for _ in range(2000):
            if all(len(p.data) >= len(payloads[0]) for p in servers + [cp for _, cp in clients]):
                break
            await asyncio.sleep(0.01)
        got = [bytes(p.data) for p in servers + [cp for _, cp in clients]]
        assert all(type(c) is bytes for c in chunks)
        assert max(len(c) for c in chunks) <= 256 * 1024
        for tr, _ in clients:
            tr.close()
        for p in servers:
            await p.lost
        srv.close()
        await srv.wait_closed()
        return got

    assert loop.run_until_complete(main()) == payloads

"""The websockets library's asyncio server and client on tidal (and on asyncio, the oracle).

Echo of every message kind, many messages, broadcast, close codes, pings and
keepalive (including a peer that stops reading), wss:// directly and through
HTTP and HTTPS CONNECT proxies (``loop.start_tls``, TLS in TLS), Unix
sockets, a plain-HTTP answer from ``process_request``, and server shutdown.
"""

from __future__ import annotations

import asyncio
import http
from pathlib import Path
from typing import Any

import pytest
from integ_support import (
    HOST,
    Runtime,
    client_ssl,
    connect_proxy,
    payload,
    read_request,
    send_while_receiving,
    server_ssl,
    stream_server,
)

websockets = pytest.importorskip("websockets")
pytest.importorskip("websockets.asyncio.server")
from websockets.asyncio.client import connect, unix_connect  # noqa: E402
from websockets.asyncio.server import (  # noqa: E402
    ServerConnection,
    broadcast,
    serve,
    unix_serve,
)
from websockets.exceptions import (  # noqa: E402
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)

# Never an environment proxy: the tests talk to 127.0.0.1 only.
NO_PROXY: dict[str, Any] = {"proxy": None}


def echo_handler(rt: Runtime, log: list[Any]) -> Any:
    async def handler(ws: ServerConnection) -> None:
        rt.check()  # websockets runs each connection in a loop.create_task() task
        try:
            async for message in ws:
                if message == "close:4000":
                    await ws.close(4000, "server says bye")
                elif message == "fail":
                    raise RuntimeError("handler failed")  # websockets closes with 1011
                else:
                    await ws.send(message)
        except ConnectionClosed as exc:
            log.append(exc)
            raise
        log.append(("closed", ws.close_code, ws.close_reason))

    return handler


def port_of(server: Any) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


def test_echo(rt: Runtime) -> None:
    async def main() -> None:
        log: list[Any] = []
        async with serve(echo_handler(rt, log), HOST, 0) as server:
            async with connect(f"ws://{HOST}:{port_of(server)}", **NO_PROXY) as ws:
                await ws.send("text")
                assert await ws.recv() == "text"
                await ws.send(b"\x00bytes\xff")
                assert await ws.recv() == b"\x00bytes\xff"
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"

                async def fragments() -> Any:
                    for i in range(5):
                        yield payload(100_000)[i * 20_000:(i + 1) * 20_000]

                await ws.send(fragments())
                assert await ws.recv() == payload(100_000)
                big = payload(900_000)
                await ws.send(big)
                assert await ws.recv() == big
                assert ws.remote_address[:2] == (HOST, port_of(server))
        assert log == [("closed", 1000, "")]

    rt.run(main)


def test_many_messages(rt: Runtime) -> None:
    async def main() -> None:
        async with serve(echo_handler(rt, []), HOST, 0) as server:
            async with connect(f"ws://{HOST}:{port_of(server)}", **NO_PROXY) as ws:
                messages = [f"m{i}" for i in range(3000)]
                assert await send_while_receiving(ws.send, ws.recv, messages) == messages

    rt.run(main)


def test_broadcast(rt: Runtime) -> None:
    async def main() -> None:
        ready = asyncio.Semaphore(0)

        async def handler(ws: ServerConnection) -> None:
            ready.release()
            await ws.wait_closed()

        async with serve(handler, HOST, 0) as server:
            url = f"ws://{HOST}:{port_of(server)}"
            clients = [await connect(url, **NO_PROXY) for _ in range(20)]
            for _ in clients:
                await ready.acquire()
            assert len(server.connections) == 20
            for i in range(10):
                broadcast(server.connections, f"news {i}")
            for ws in clients:
                assert [await ws.recv() for _ in range(10)] == [f"news {i}" for i in range(10)]
            await asyncio.gather(*(ws.close() for ws in clients))

    rt.run(main)


def test_close_codes(rt: Runtime) -> None:
    async def main() -> None:
        log: list[Any] = []
        async with serve(echo_handler(rt, log), HOST, 0, max_size=1000) as server:
            url = f"ws://{HOST}:{port_of(server)}"
            # The server closes with an application code.
            async with connect(url, **NO_PROXY) as ws:
                await ws.send("close:4000")
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "server says bye")
            # The client goes away.
            async with connect(url, **NO_PROXY) as ws:
                await ws.send("x")
                await ws.recv()
                await ws.close(1001, "client leaving")
                assert ws.close_code == 1001
            # The handler raises: internal error.
            async with connect(url, **NO_PROXY) as ws:
                await ws.send("fail")
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1011
            # A message over the server's max_size.
            async with connect(url, **NO_PROXY) as ws:
                await ws.send("y" * 2000)
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            await asyncio.sleep(0)
        sent = [(e.sent.code, e.sent.reason) for e in log if isinstance(e, ConnectionClosedError)
                and e.sent is not None]
        assert sent[:1] == [(4000, "server says bye")]
        # ``async for`` ends quietly on a normal close.
        assert ("closed", 1001, "client leaving") in log

    rt.run(main)


def test_ping_pong(rt: Runtime) -> None:
    async def main() -> None:
        async with serve(echo_handler(rt, []), HOST, 0) as server:
            url = f"ws://{HOST}:{port_of(server)}"
            async with connect(url, **NO_PROXY) as ws:
                pong = await ws.ping(b"are you there")
                latency = await pong
                assert 0 <= latency < 1
                await asyncio.gather(*[await ws.ping(str(i)) for i in range(20)])
            # Keepalive: the client pings every 30 ms, the server answers.
            async with connect(url, ping_interval=0.03, ping_timeout=0.5, **NO_PROXY) as ws:
                await asyncio.sleep(0.15)
                assert ws.latency > 0
                await ws.send("alive")
                assert await ws.recv() == "alive"

    rt.run(main)


def test_keepalive_timeout(rt: Runtime) -> None:
    """A client that stops reading misses the server's pings and is dropped with 1011."""

    async def main() -> None:
        log: list[Any] = []
        async with serve(echo_handler(rt, log), HOST, 0, ping_interval=0.05,
                         ping_timeout=0.05, close_timeout=0.1) as server:
            async with connect(f"ws://{HOST}:{port_of(server)}", **NO_PROXY) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                ws.transport.pause_reading()
                for _ in range(100):
                    if log:
                        break
                    await asyncio.sleep(0.02)
                ws.transport.resume_reading()
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1011
        assert isinstance(log[0], ConnectionClosedError)
        assert log[0].sent is not None and log[0].sent.code == 1011

    rt.run(main)


def test_wss(rt: Runtime) -> None:
    async def main() -> None:
        async with serve(echo_handler(rt, []), HOST, 0, ssl=server_ssl()) as server:
            port = port_of(server)
            for host in (HOST, "localhost"):
                async with connect(f"wss://{host}:{port}", ssl=client_ssl(),
                                   **NO_PROXY) as ws:
                    sslobj = ws.transport.get_extra_info("ssl_object")
                    assert sslobj.version().startswith("TLS")
                    big = payload(600_000)
                    await ws.send(big)
                    assert await ws.recv() == big

    rt.run(main)


@pytest.mark.parametrize("proxy_tls", [False, True], ids=["http-proxy", "https-proxy"])
def test_wss_through_proxy(rt: Runtime, proxy_tls: bool) -> None:
    """websockets opens the tunnel, then loop.start_tls() over it (TLS in TLS for https)."""

    async def main() -> None:
        async with serve(echo_handler(rt, []), HOST, 0, ssl=server_ssl()) as server, \
                stream_server(connect_proxy,
                              ssl_context=server_ssl() if proxy_tls else None) as proxy_port:
            scheme = "https" if proxy_tls else "http"
            extra = {"proxy_ssl": client_ssl()} if proxy_tls else {}
            async with connect(f"wss://localhost:{port_of(server)}", ssl=client_ssl(),
                               proxy=f"{scheme}://{HOST}:{proxy_port}", **extra) as ws:
                for i in range(50):
                    await ws.send(f"via proxy {i}")
                    assert await ws.recv() == f"via proxy {i}"
                big = payload(300_000)
                await ws.send(big)
                assert await ws.recv() == big

    rt.run(main)


def test_unix_socket(rt: Runtime, tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")

    async def main() -> None:
        async with unix_serve(echo_handler(rt, []), path):
            async with unix_connect(path, "ws://localhost/") as ws:
                await ws.send("over unix")
                assert await ws.recv() == "over unix"
                await ws.send(payload(200_000))
                assert await ws.recv() == payload(200_000)

    rt.run(main)


def test_process_request_answers_plain_http(rt: Runtime) -> None:
    async def main() -> None:
        def health(connection: ServerConnection, request: Any) -> Any:
            if request.path == "/healthz":
                return connection.respond(http.HTTPStatus.OK, "OK\n")
            return None

        async with serve(echo_handler(rt, []), HOST, 0, process_request=health) as server:
            port = port_of(server)
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = await reader.read()
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert answer.endswith(b"\r\n\r\nOK\n")
            writer.close()
            await writer.wait_closed()
            async with connect(f"ws://{HOST}:{port}/", **NO_PROXY) as ws:
                await ws.send("still a websocket server")
                assert await ws.recv() == "still a websocket server"

    rt.run(main)


def test_server_close_sends_going_away(rt: Runtime) -> None:
    async def main() -> None:
        async def handler(ws: ServerConnection) -> None:
            await ws.wait_closed()

        server = await serve(handler, HOST, 0)
        port = port_of(server)
        clients = [await connect(f"ws://{HOST}:{port}", **NO_PROXY) for _ in range(3)]
        server.close()
        await server.wait_closed()
        for ws in clients:
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        # Nothing listens any more.
        with pytest.raises(OSError):
            await connect(f"ws://{HOST}:{port}", **NO_PROXY)

    rt.run(main)


def test_raw_handshake_against_stream_server(rt: Runtime) -> None:
    """The websockets client against a hand-written server that refuses the upgrade."""

    async def main() -> None:
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            _, target, headers, _ = await read_request(reader)
            assert target == "/chat" and headers["upgrade"].lower() == "websocket"
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
            await writer.drain()

        async with stream_server(refuse) as port:
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                await connect(f"ws://{HOST}:{port}/chat", **NO_PROXY)
            assert info.value.response.status_code == 403
            assert info.value.response.body == b"nope"

    rt.run(main)


def test_open_timeout(rt: Runtime) -> None:
    """A server that accepts the connection but never answers the handshake."""

    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client gives up

        async with stream_server(silent) as port:
            with pytest.raises(TimeoutError):
                await connect(f"ws://{HOST}:{port}/", open_timeout=0.1, **NO_PROXY)
            with pytest.raises(TimeoutError):
                await connect(f"wss://localhost:{port}/", open_timeout=0.1, ssl=client_ssl(),
                              **NO_PROXY)

    rt.run(main)

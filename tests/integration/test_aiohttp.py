"""aiohttp's server and client on tidal (and on asyncio, the oracle).

Routes, keep-alive and concurrency, streamed bodies both ways, FileResponse
(``loop.sendfile``), websockets, client timeouts, HTTPS (``create_server`` /
``create_connection`` with ``ssl=``), HTTPS through a CONNECT proxy
(``loop.start_tls``), Unix sockets, and a client that goes away mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from integ_support import (
    CERTS,
    HOST,
    Runtime,
    aiohttp_server,
    client_ssl,
    connect_proxy,
    digest,
    payload,
    send_while_receiving,
    server_ssl,
    stream_server,
    untrusting_ssl,
)

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import WSCloseCode, WSMsgType, web  # noqa: E402


def app_with_routes(rt: Runtime) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/hello")
    async def hello(request: web.Request) -> web.Response:
        rt.check_loop()
        return web.Response(text="hello", headers={"X-Runtime": rt.kind})

    @routes.get("/json/{name}")
    async def as_json(request: web.Request) -> web.Response:
        return web.json_response({"name": request.match_info["name"],
                                  "q": request.query.get("q")})

    @routes.post("/echo")
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=body, content_type=request.content_type)

    @routes.get("/peer")
    async def peer(request: web.Request) -> web.Response:
        await asyncio.sleep(0.001)
        assert request.transport is not None
        return web.Response(text=str(request.transport.get_extra_info("peername")[1]))

    app = web.Application()
    app.add_routes(routes)
    return app


def test_routes(rt: Runtime) -> None:
    async def main() -> None:
        async with aiohttp_server(app_with_routes(rt)) as url, aiohttp.ClientSession() as s:
            async with s.get(f"{url}/hello") as r:
                assert r.status == 200
                assert r.headers["X-Runtime"] == rt.kind
                assert await r.text() == "hello"
            async with s.get(f"{url}/json/tide", params={"q": "x y"}) as r:
                assert await r.json() == {"name": "tide", "q": "x y"}
            async with s.post(f"{url}/echo", json={"a": [1, 2]}) as r:
                assert r.content_type == "application/json"
                assert json.loads(await r.read()) == {"a": [1, 2]}
            async with s.get(f"{url}/missing") as r:
                assert r.status == 404
            rt.check()

    rt.run(main)


def test_keepalive_and_concurrent_requests(rt: Runtime) -> None:
    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=4)
        async with aiohttp_server(app_with_routes(rt)) as url, \
                aiohttp.ClientSession(connector=connector) as s:

            async def get() -> str:
                async with s.get(f"{url}/peer") as r:
                    return await r.text()

            ports = await asyncio.gather(*(get() for _ in range(40)))
            # 40 requests shared at most 4 connections, reused across requests.
            assert 1 <= len(set(ports)) <= 4

    rt.run(main)


def test_server_closes_idle_connections(rt: Runtime) -> None:
    """A keep-alive timeout closes idle connections; the client notices and reconnects."""

    async def main() -> None:
        async with aiohttp_server(app_with_routes(rt), keepalive_timeout=0.02) as url, \
                aiohttp.ClientSession() as s:
            ports = []
            for _ in range(3):
                async with s.get(f"{url}/peer") as r:
                    ports.append(await r.text())
                await asyncio.sleep(0.1)
            assert len(set(ports)) == 3

    rt.run(main)


def test_sock_site(rt: Runtime) -> None:
    """web.SockSite: loop.create_server(sock=...) on a socket bound by the application."""

    async def main() -> None:
        sock = socket.socket()
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        async with aiohttp_server(app_with_routes(rt), sock=sock), aiohttp.ClientSession() as s:
            async with s.get(f"http://{HOST}:{port}/hello") as r:
                assert await r.text() == "hello"
        assert sock.fileno() == -1  # the server closed it

    rt.run(main)


def test_handler_cancellation(rt: Runtime) -> None:
    """With handler_cancellation=True a client that hangs up cancels its handler."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.create_future()
        outcome = loop.create_future()

        async def slow(request: web.Request) -> web.Response:
            started.set_result(None)
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                outcome.set_result("cancelled")
                raise
            outcome.set_result("finished")
            return web.Response(text="late")

        app = web.Application()
        app.router.add_get("/slow", slow)
        async with aiohttp_server(app, handler_cancellation=True) as url, \
                aiohttp.ClientSession() as s:
            request = asyncio.create_task(s.get(f"{url}/slow"))
            await started
            request.cancel()  # closes the client's connection
            with pytest.raises(asyncio.CancelledError):
                await request
            assert await outcome == "cancelled"

    rt.run(main)


BIG = 4 * 1024 * 1024


def streaming_app() -> web.Application:
    data = payload(BIG)

    async def download(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        if request.query.get("chunked"):
            resp.enable_chunked_encoding()
        else:
            resp.content_length = BIG
        await resp.prepare(request)
        view = memoryview(data)
        for i in range(0, BIG, 100_000):
            await resp.write(view[i:i + 100_000])
        await resp.write_eof()
        return resp

    async def upload(request: web.Request) -> web.Response:
        size = 0
        chunks = []
        async for chunk in request.content.iter_chunked(50_000):
            size += len(chunk)
            chunks.append(chunk)
        return web.json_response({"size": size, "digest": digest(b"".join(chunks))})

    app = web.Application(client_max_size=2 * BIG)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    return app


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_streaming_large_response(rt: Runtime, chunked: bool) -> None:
    async def main() -> None:
        async with aiohttp_server(streaming_app()) as url, aiohttp.ClientSession() as s:
            query = {"chunked": "1"} if chunked else {}
            async with s.get(f"{url}/download", params=query) as r:
                assert r.status == 200
                assert (r.headers.get("Transfer-Encoding") == "chunked") is chunked
                parts = []
                async for part in r.content.iter_chunked(32 * 1024):
                    parts.append(part)
                    if len(parts) == 32:
                        # A stalled reader: both transports' buffers fill, the
                        # client pauses reading and the server's writes pause.
                        await asyncio.sleep(0.05)
                    elif len(parts) % 16 == 0:
                        await asyncio.sleep(0)
            body = b"".join(parts)
            assert len(body) == BIG
            assert digest(body) == digest(payload(BIG))

    rt.run(main)


def test_streaming_upload(rt: Runtime) -> None:
    data = payload(BIG)

    async def body() -> Any:
        for i in range(0, BIG, 70_000):
            yield data[i:i + 70_000]

    async def main() -> None:
        async with aiohttp_server(streaming_app()) as url, aiohttp.ClientSession() as s:
            async with s.post(f"{url}/upload", data=body()) as r:
                assert await r.json() == {"size": BIG, "digest": digest(data)}

    rt.run(main)


def test_file_response(rt: Runtime, tmp_path: Path) -> None:
    """FileResponse sends through loop.sendfile(); a Range request gets the slice."""
    data = payload(3 * 1024 * 1024 + 17)
    (tmp_path / "blob.bin").write_bytes(data)

    async def main() -> None:
        async def blob(request: web.Request) -> web.FileResponse:
            return web.FileResponse(tmp_path / "blob.bin")

        app = web.Application()
        app.router.add_get("/blob", blob)
        async with aiohttp_server(app) as url, aiohttp.ClientSession() as s:
            async with s.get(f"{url}/blob") as r:
                assert r.status == 200
                assert await r.read() == data
            async with s.get(f"{url}/blob", headers={"Range": "bytes=1000-1999999"}) as r:
                assert r.status == 206
                assert await r.read() == data[1000:2000000]

    rt.run(main)


def test_client_gone_mid_stream(rt: Runtime) -> None:
    """A client that closes a response early: the server's writes fail and the handler ends."""

    async def main() -> None:
        ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        async def endless(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            await resp.prepare(request)
            try:
                for _ in range(100_000):
                    await resp.write(b"x" * 65536)
            except (ConnectionError, aiohttp.ClientConnectionResetError) as exc:
                ended.set_result(exc)
                raise
            ended.set_result(None)
            return resp

        app = web.Application()
        app.router.add_get("/endless", endless)
        async with aiohttp_server(app) as url, aiohttp.ClientSession() as s:
            r = await s.get(f"{url}/endless")
            assert len(await r.content.readexactly(200_000)) == 200_000
            r.close()
            assert isinstance(await ended, ConnectionError)

    rt.run(main)


# -- websockets ---------------------------------------------------------------


def ws_app(rt: Runtime, log: list[Any]) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        rt.check_loop()
        ws = web.WebSocketResponse(autoping=request.query.get("autoping") != "0")
        await ws.prepare(request)
        async for msg in ws:
            log.append((msg.type, msg.data))
            if msg.type == WSMsgType.TEXT:
                if msg.data.startswith("close:"):
                    await ws.close(code=int(msg.data[6:]), message=b"server says bye")
                else:
                    await ws.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data + b"!")
        log.append(("closed", ws.close_code))
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


@asynccontextmanager
async def ws_server(rt: Runtime, log: list[Any]) -> AsyncIterator[tuple[str, Any]]:
    """The websocket app served, and a client session: (base URL, session)."""
    async with aiohttp_server(ws_app(rt, log)) as url, aiohttp.ClientSession() as s:
        yield url, s


def test_websocket_echo(rt: Runtime) -> None:
    async def main() -> None:
        log: list[Any] = []
        async with ws_server(rt, log) as (url, s):
            async with s.ws_connect(f"{url}/ws") as ws:
                await ws.send_str("hi")
                assert await ws.receive_str() == "echo:hi"
                await ws.send_bytes(b"\x00\x01\x02")
                assert await ws.receive_bytes() == b"\x02\x01\x00"
                await ws.send_json({"k": 1})
                assert await ws.receive_str() == 'echo:{"k": 1}'
                big = payload(1_000_000)
                await ws.send_bytes(big)
                assert await ws.receive_bytes() == big[::-1]
            assert ws.closed
            assert ws.close_code == WSCloseCode.OK
        assert log[-1] == ("closed", WSCloseCode.OK)

    rt.run(main)


def test_websocket_many_messages(rt: Runtime) -> None:
    async def main() -> None:
        log: list[Any] = []
        async with ws_server(rt, log) as (url, s):
            async with s.ws_connect(f"{url}/ws") as ws:
                messages = [str(i) for i in range(2000)]
                got = await send_while_receiving(ws.send_str, ws.receive_str, messages)
                assert got == [f"echo:{m}" for m in messages]

    rt.run(main)


def test_websocket_close_codes(rt: Runtime) -> None:
    async def main() -> None:
        log: list[Any] = []
        async with ws_server(rt, log) as (url, s):
            # The server closes with its code; the client sees it.
            async with s.ws_connect(f"{url}/ws") as ws:
                await ws.send_str("close:4001")
                msg = await ws.receive()
                assert msg.type == WSMsgType.CLOSE
                assert msg.data == 4001
                assert msg.extra == "server says bye"
                assert (await ws.receive()).type == WSMsgType.CLOSED
                assert ws.close_code == 4001
            # The client closes with its code; the server sees it.
            async with s.ws_connect(f"{url}/ws") as ws:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"leaving")
            assert ws.closed
        assert log[-1] == ("closed", WSCloseCode.GOING_AWAY)

    rt.run(main)


def test_websocket_ping_pong(rt: Runtime) -> None:
    async def main() -> None:
        log: list[Any] = []
        async with ws_server(rt, log) as (url, s):
            # Manual: neither side answers pings on its own.
            async with s.ws_connect(f"{url}/ws?autoping=0", autoping=False) as ws:
                await ws.ping(b"one")
                msg = await ws.receive()
                assert (msg.type, msg.data) == (WSMsgType.PONG, b"one!")
            assert (WSMsgType.PING, b"one") in log
            # Automatic: heartbeats every 50 ms are answered by the server's autoping.
            async with s.ws_connect(f"{url}/ws", heartbeat=0.05) as ws:
                await asyncio.sleep(0.2)
                await ws.send_str("still there")
                assert await ws.receive_str() == "echo:still there"

    rt.run(main)


# -- timeouts -------------------------------------------------------------------


def test_client_timeouts(rt: Runtime) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def stall(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            if request.query.get("partial"):
                resp.content_length = 10
                await resp.prepare(request)
                await resp.write(b"12345")
            await release.wait()
            return resp

        app = web.Application()
        app.router.add_get("/stall", stall)
        async with aiohttp_server(app) as url, aiohttp.ClientSession() as s:
            try:
                # Total timeout: no response head at all.
                start = time.monotonic()
                with pytest.raises(asyncio.TimeoutError):
                    async with s.get(f"{url}/stall",
                                     timeout=aiohttp.ClientTimeout(total=0.15)) as r:
                        await r.read()
                assert 0.1 < time.monotonic() - start < 2
                # Read timeout: half a body, then silence.
                async with s.get(f"{url}/stall?partial=1",
                                 timeout=aiohttp.ClientTimeout(sock_read=0.15)) as r:
                    assert await r.content.readexactly(5) == b"12345"
                    with pytest.raises(aiohttp.SocketTimeoutError):
                        await r.read()
                # asyncio.timeout() around a request cancels it cleanly.
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await s.get(f"{url}/stall")
            finally:
                release.set()

    rt.run(main)


# -- TLS --------------------------------------------------------------------------


def test_https(rt: Runtime, tmp_path: Path) -> None:
    blob = payload(1_000_003)
    (tmp_path / "blob.bin").write_bytes(blob)

    async def main() -> None:
        seen: list[Any] = []

        async def info(request: web.Request) -> web.Response:
            assert request.transport is not None
            sslobj = request.transport.get_extra_info("ssl_object")
            seen.append((request.secure, sslobj is not None))
            return web.Response(text=sslobj.version())

        async def file(request: web.Request) -> web.FileResponse:
            return web.FileResponse(tmp_path / "blob.bin")

        log: list[Any] = []
        app = ws_app(rt, log)
        app.router.add_get("/info", info)
        app.router.add_get("/blob", file)
        async with aiohttp_server(app, ssl_context=server_ssl()) as url:
            assert url.startswith("https://")
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_ssl())
            ) as s:
                for _ in range(3):
                    async with s.get(f"{url}/info") as r:
                        assert (await r.text()).startswith("TLS")
                async with s.ws_connect(f"{url}/ws") as ws:
                    peercert = ws.get_extra_info("peercert")
                    assert ("DNS", "localhost") in peercert["subjectAltName"]
                    assert ws.get_extra_info("ssl_object").version().startswith("TLS")
                    await ws.send_str("secure")
                    assert await ws.receive_str() == "echo:secure"
                async with s.get(f"{url.replace(HOST, 'localhost')}/info") as r:
                    assert r.status == 200
                # loop.sendfile() on a TLS transport falls back to reads and writes.
                async with s.get(f"{url}/blob") as r:
                    assert await r.read() == blob
            # A certificate from a CA the client does not trust.
            async with aiohttp.ClientSession() as s:
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await s.get(f"{url}/info", ssl=untrusting_ssl())
        assert seen and all(s == (True, True) for s in seen)

    rt.run(main)


def test_https_through_connect_proxy(rt: Runtime) -> None:
    """aiohttp upgrades the proxy tunnel with loop.start_tls()."""

    async def main() -> None:
        async with aiohttp_server(app_with_routes(rt), ssl_context=server_ssl()) as url, \
                stream_server(connect_proxy) as proxy_port, \
                aiohttp.ClientSession() as s:
            proxy = f"http://{HOST}:{proxy_port}"
            async with s.get(f"{url}/hello", proxy=proxy, ssl=client_ssl()) as r:
                assert r.status == 200
                assert await r.text() == "hello"
            async with s.post(f"{url}/echo", data=payload(300_000), proxy=proxy,
                              ssl=client_ssl()) as r:
                assert await r.read() == payload(300_000)

    rt.run(main)


# -- Unix sockets ---------------------------------------------------------------------


def test_unix_socket(rt: Runtime, tmp_path: Path) -> None:
    path = str(tmp_path / "http.sock")

    async def main() -> None:
        runner = web.AppRunner(app_with_routes(rt))
        await runner.setup()
        try:
            await web.UnixSite(runner, path).start()
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as s:
                for _ in range(3):
                    async with s.get("http://localhost/hello") as r:
                        assert await r.text() == "hello"
                async with s.post("http://localhost/echo", data=payload(500_000)) as r:
                    assert await r.read() == payload(500_000)
        finally:
            await runner.cleanup()

    rt.run(main)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_loopback(rt: Runtime) -> None:
    async def main() -> None:
        runner = web.AppRunner(app_with_routes(rt))
        await runner.setup()
        try:
            await web.TCPSite(runner, "::1", 0).start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://[::1]:{port}/peer") as r:
                    assert r.status == 200
                async with s.post(f"http://[::1]:{port}/echo", data=payload(300_000)) as r:
                    assert await r.read() == payload(300_000)
        finally:
            await runner.cleanup()

    rt.run(main)


def test_mutual_tls(rt: Runtime) -> None:
    """The server requires a client certificate and sees it through the transport."""

    async def main() -> None:
        async def whoami(request: web.Request) -> web.Response:
            assert request.transport is not None
            cert = request.transport.get_extra_info("peercert")
            return web.Response(text=dict(x[0] for x in cert["subject"])["commonName"])

        app = web.Application()
        app.router.add_get("/whoami", whoami)
        server_ctx = server_ssl()
        server_ctx.load_verify_locations(CERTS / "ca.pem")
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        with_cert = client_ssl()
        with_cert.load_cert_chain(CERTS / "cert.pem", CERTS / "key.pem")
        async with aiohttp_server(app, ssl_context=server_ctx) as url, \
                aiohttp.ClientSession() as s:
            async with s.get(f"{url}/whoami", ssl=with_cert) as r:
                assert await r.text() == "localhost"
            # Without a certificate the server ends the handshake (TLS 1.3: after it).
            with pytest.raises(aiohttp.ClientError):
                async with s.get(f"{url}/whoami", ssl=client_ssl()) as r:
                    await r.read()

    rt.run(main)


def test_tls_handshake_timeout(rt: Runtime) -> None:
    """HTTPS to a server that accepts but never speaks TLS: the client's timeout ends it."""

    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client gives up

        async with stream_server(silent) as port, aiohttp.ClientSession() as s:
            start = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await s.get(f"https://{HOST}:{port}/", ssl=client_ssl(),
                            timeout=aiohttp.ClientTimeout(total=0.2))
            assert time.monotonic() - start < 2

    rt.run(main)


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
@pytest.mark.parametrize("delay", [None, 0.05], ids=["sequential", "happy-eyeballs"])
def test_next_address_after_a_refusal(rt: Runtime, delay: float | None) -> None:
    """aiohappyeyeballs tries ::1 (nothing listens there), then 127.0.0.1."""

    class TwoAddresses(aiohttp.abc.AbstractResolver):
        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
            return [
                {"hostname": host, "host": addr, "port": port, "family": fam,
                 "proto": socket.IPPROTO_TCP, "flags": socket.AI_NUMERICHOST}
                for addr, fam in (("::1", socket.AF_INET6), (HOST, socket.AF_INET))
            ]

        async def close(self) -> None:
            pass

    async def main() -> None:
        async with aiohttp_server(app_with_routes(rt)) as url:
            port = url.rsplit(":", 1)[1]
            connector = aiohttp.TCPConnector(resolver=TwoAddresses(), use_dns_cache=False,
                                             happy_eyeballs_delay=delay)
            async with aiohttp.ClientSession(connector=connector) as s:
                for _ in range(3):
                    async with s.get(f"http://tide.invalid:{port}/hello") as r:
                        assert await r.text() == "hello"
                        assert r.connection is None or \
                            r.connection.transport.get_extra_info("peername")[0] == HOST

    rt.run(main)

"""httpx's AsyncClient (httpcore over anyio) on tidal (and on asyncio, the oracle).

Against a hand-written HTTP/1.1 server on asyncio streams, and against
aiohttp's server when it is installed: requests, keep-alive and concurrency
limits, streamed bodies both ways, timeouts (read, pool, cancellation),
HTTPS (anyio's TLS over a tidal transport, against tidal's TLS server),
Unix sockets, and a server that drops an idle keep-alive connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from integ_support import (
    HOST,
    Runtime,
    aiohttp_server,
    client_ssl,
    digest,
    payload,
    read_request,
    response_head,
    server_ssl,
    stream_server,
    untrusting_ssl,
)

httpx = pytest.importorskip("httpx")


def client(**kw: Any) -> Any:
    """An AsyncClient that never consults the environment for proxies or certificates."""
    return httpx.AsyncClient(trust_env=False, **kw)


class App:
    """A small HTTP/1.1 server with keep-alive, on asyncio streams."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.connections = 0
        self.release = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.rt.check()  # start_server runs each connection in a loop.create_task() task
        self.connections += 1
        while not reader.at_eof():
            try:
                method, target, headers, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            url = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            keep = await self.respond(method, url.path, query, headers, body, writer)
            await writer.drain()
            if not keep:
                return

    async def respond(self, method: str, path: str, query: dict[str, str],
                      headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> bool:
        def send(data: bytes, status: str = "200 OK", **extra: str) -> None:
            hdrs = {"Content-Length": str(len(data)), **extra}
            writer.write(response_head(status, hdrs) + data)

        if path == "/hello":
            send(b"hello", **{"X-Method": method})
        elif path == "/echo":
            send(body, **{"Content-Type": headers.get("content-type", "")})
        elif path == "/peer":
            await asyncio.sleep(0.001)
            send(str(writer.get_extra_info("peername")[1]).encode())
        elif path == "/chunked":
            size = int(query["size"])
            writer.write(response_head("200 OK", {"Transfer-Encoding": "chunked"}))
            view = memoryview(payload(size))
            for i in range(0, size, 100_000):
                part = view[i:i + 100_000]
                writer.write(b"%x\r\n" % len(part) + part + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif path == "/lines":
            writer.write(response_head("200 OK", {"Transfer-Encoding": "chunked",
                                                  "Content-Type": "text/event-stream"}))
            for i in range(5):
                line = f"data: {i}\n\n".encode()
                writer.write(b"%x\r\n" % len(line) + line + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.005)
            writer.write(b"0\r\n\r\n")
        elif path == "/digest":
            send(json.dumps({"size": len(body), "digest": digest(body)}).encode())
        elif path == "/stall":
            if query.get("partial"):
                writer.write(response_head("200 OK", {"Content-Length": "10"}) + b"12345")
            await self.release.wait()
            return False
        elif path == "/close":
            send(b"bye", Connection="close")
            return False
        else:
            send(b"not found", "404 Not Found")
        return True


def test_requests(rt: Runtime) -> None:
    async def main() -> None:
        app = App(rt)
        async with stream_server(app) as port, client(base_url=f"http://{HOST}:{port}") as c:
            r = await c.get("/hello")
            assert (r.status_code, r.text, r.headers["x-method"]) == (200, "hello", "GET")
            r = await c.post("/echo", json={"a": [1, 2]})
            assert r.headers["content-type"] == "application/json"
            assert r.json() == {"a": [1, 2]}
            r = await c.put("/echo", content=payload(700_000))
            assert r.content == payload(700_000)
            r = await c.get("/nowhere")
            assert r.status_code == 404
            with pytest.raises(httpx.HTTPStatusError):
                r.raise_for_status()
            # All of it over one keep-alive connection.
            assert app.connections == 1
            rt.check()

    rt.run(main)


def test_concurrent_requests_share_a_bounded_pool(rt: Runtime) -> None:
    async def main() -> None:
        app = App(rt)
        limits = httpx.Limits(max_connections=5, max_keepalive_connections=5)
        async with stream_server(app) as port, \
                client(base_url=f"http://{HOST}:{port}", limits=limits) as c:
            responses = await asyncio.gather(*(c.get("/peer") for _ in range(60)))
            assert all(r.status_code == 200 for r in responses)
            assert 1 <= len({r.text for r in responses}) <= 5
            assert app.connections <= 5

    rt.run(main)


def test_streaming_response(rt: Runtime) -> None:
    size = 5 * 1024 * 1024 + 3

    async def main() -> None:
        async with stream_server(App(rt)) as port, \
                client(base_url=f"http://{HOST}:{port}") as c:
            async with c.stream("GET", "/chunked", params={"size": size}) as r:
                assert r.headers["transfer-encoding"] == "chunked"
                parts = [part async for part in r.aiter_bytes()]
            body = b"".join(parts)
            assert len(body) == size and digest(body) == digest(payload(size))
            # Server-sent lines arrive as they are written.
            stamps = []
            async with c.stream("GET", "/lines") as r:
                async for line in r.aiter_lines():
                    if line:
                        stamps.append(line)
            assert stamps == [f"data: {i}" for i in range(5)]

    rt.run(main)


def test_streaming_upload(rt: Runtime) -> None:
    data = payload(3 * 1024 * 1024)

    async def body() -> Any:
        for i in range(0, len(data), 64 * 1024):
            yield data[i:i + 64 * 1024]

    async def main() -> None:
        async with stream_server(App(rt)) as port, \
                client(base_url=f"http://{HOST}:{port}") as c:
            r = await c.post("/digest", content=body(),
                             headers={"Content-Length": str(len(data))})
            assert r.json() == {"size": len(data), "digest": digest(data)}

    rt.run(main)


def test_timeouts(rt: Runtime) -> None:
    async def main() -> None:
        app = App(rt)
        async with stream_server(app) as port:
            try:
                async with client(base_url=f"http://{HOST}:{port}",
                                  limits=httpx.Limits(max_connections=1)) as c:
                    start = time.monotonic()
                    with pytest.raises(httpx.ReadTimeout):
                        await c.get("/stall", timeout=0.15)
                    assert 0.1 < time.monotonic() - start < 2
                    async with c.stream("GET", "/stall?partial=1", timeout=0.15) as r:
                        with pytest.raises(httpx.ReadTimeout):
                            await r.aread()
                    # The only connection is busy: the pool times out.
                    stalled = asyncio.create_task(c.get("/stall", timeout=5))
                    await asyncio.sleep(0.05)
                    with pytest.raises(httpx.PoolTimeout):
                        await c.get("/hello", timeout=httpx.Timeout(5, pool=0.1))
                    # Cancelling through asyncio.timeout(): anyio's cancel scopes and
                    # asyncio's uncancel() bookkeeping must agree.
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await stalled
                    assert stalled.cancelled()
                    r = await c.get("/hello")
                    assert r.text == "hello"
            finally:
                app.release.set()

    rt.run(main)


def test_server_drops_idle_connection(rt: Runtime) -> None:
    """httpcore notices a keep-alive connection the server closed, and opens a new one."""

    async def main() -> None:
        app = App(rt)
        async with stream_server(app) as port, client(base_url=f"http://{HOST}:{port}") as c:
            assert (await c.get("/close")).text == "bye"
            await asyncio.sleep(0.02)
            assert (await c.get("/hello")).text == "hello"
            assert (await c.get("/hello")).text == "hello"
            assert app.connections == 2

    rt.run(main)


def test_https(rt: Runtime) -> None:
    async def main() -> None:
        async with stream_server(App(rt), ssl_context=server_ssl()) as port:
            async with client(verify=client_ssl()) as c:
                for host in (HOST, "localhost"):
                    r = await c.get(f"https://{host}:{port}/hello")
                    assert r.text == "hello"
                r = await c.post(f"https://{HOST}:{port}/echo", content=payload(1_500_000))
                assert r.content == payload(1_500_000)
            async with client(verify=untrusting_ssl()) as c:
                with pytest.raises(httpx.ConnectError, match=(
                    r"^\[SSL: CERTIFICATE_VERIFY_FAILED\] certificate verify failed: "
                    r"unable to get local issuer certificate \(_ssl\.c:\d+\)$"
                )):
                    await c.get(f"https://{HOST}:{port}/hello")

    rt.run(main)


def test_unix_socket(rt: Runtime, tmp_path: Path) -> None:
    path = str(tmp_path / "http.sock")

    async def main() -> None:
        async with stream_server(App(rt), unix=path), \
                client(transport=httpx.AsyncHTTPTransport(uds=path)) as c:
            r = await c.get("http://localhost/hello")
            assert r.text == "hello"
            r = await c.post("http://localhost/echo", content=payload(400_000))
            assert r.content == payload(400_000)

    rt.run(main)


# -- against aiohttp's server ------------------------------------------------------


def aiohttp_app(rt: Runtime) -> Any:
    web = pytest.importorskip("aiohttp.web")

    async def hello(request: Any) -> Any:
        rt.check_loop()
        return web.Response(text=f"hello {request.query.get('n', '')}".strip())

    async def stream(request: Any) -> Any:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, 2_000_000, 50_000):
            await resp.write(payload(2_000_000)[i:i + 50_000])
        await resp.write_eof()
        return resp

    async def redirect(request: Any) -> Any:
        raise web.HTTPFound("/hello?n=redirected")

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/stream", stream)
    app.router.add_get("/redirect", redirect)
    return app


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_against_aiohttp(rt: Runtime, tls: bool) -> None:
    async def main() -> None:
        ctx = server_ssl() if tls else None
        async with aiohttp_server(aiohttp_app(rt), ssl_context=ctx) as url, \
                client(base_url=url, verify=client_ssl()) as c:
            replies = await asyncio.gather(*(c.get("/hello", params={"n": i})
                                             for i in range(30)))
            assert [r.text for r in replies] == [f"hello {i}" for i in range(30)]
            r = await c.get("/redirect", follow_redirects=True)
            assert r.text == "hello redirected" and len(r.history) == 1
            async with c.stream("GET", "/stream") as r:
                body = b"".join([part async for part in r.aiter_raw()])
            assert body == payload(2_000_000)

    rt.run(main)

"""Cancelling a library call at every loop turn, over TLS, on tidal and on asyncio.

A request is started, the loop turns *k* times, the request is cancelled:
for each *k*, from before the connection exists, through the TLS handshake
and the exchange, to after it finished.  Whatever state the transports were
in, nothing may leak, nothing may reach the exception handler, and the
client must keep working afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from integ_support import HOST, Runtime, aiohttp_server, client_ssl, server_ssl

# Sweep on until this many calls in a row finished before their cancel() came.
DONE_IN_A_ROW = 3


async def sweep(call: Callable[[], Awaitable[Any]], expected: Any) -> list[str]:
    outcomes: list[str] = []
    for k in range(300):
        if outcomes[-DONE_IN_A_ROW:] == ["done"] * DONE_IN_A_ROW:
            break
        task = asyncio.ensure_future(call())
        for _ in range(k):
            await asyncio.sleep(0)
        task.cancel()
        try:
            assert await task == expected
            outcomes.append("done")
        except asyncio.CancelledError:
            outcomes.append("cancelled")
    assert outcomes[0] == "cancelled" and outcomes[-1] == "done"
    assert await call() == expected
    return outcomes


def hello_app() -> Any:
    web = pytest.importorskip("aiohttp.web")

    async def hello(request: Any) -> Any:
        return web.Response(body=b"x" * 50_000)

    app = web.Application()
    app.router.add_get("/", hello)
    return app


def test_aiohttp_client(rt: Runtime) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def main() -> None:
        async with aiohttp_server(hello_app(), ssl_context=server_ssl()) as url:
            # A new session each time: cancelled in connect, handshake, request or read.
            async def fresh() -> int:
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=client_ssl())
                ) as s, s.get(url) as r:
                    return len(await r.read())

            await sweep(fresh, 50_000)
            # One session whose pooled connections see the cancellations.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_ssl())
            ) as s:

                async def pooled() -> int:
                    async with s.get(url) as r:
                        return len(await r.read())

                await sweep(pooled, 50_000)

    rt.run(main)


def test_httpx_client(rt: Runtime) -> None:
    httpx = pytest.importorskip("httpx")

    async def main() -> None:
        # Plain HTTP: cancelled inside anyio's TLS handshake, httpcore leaves the
        # TCP stream unclosed on asyncio too (a ResourceWarning, a leaked fd).
        async with aiohttp_server(hello_app()) as url, httpx.AsyncClient(trust_env=False) as c:

            async def get() -> int:
                return len((await c.get(url)).content)

            await sweep(get, 50_000)

    rt.run(main)


def test_websockets_client(rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("websockets.asyncio.server")
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def echo(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass  # a client cancelled mid-exchange

    async def main() -> None:
        async with serve(echo, HOST, 0, ssl=server_ssl()) as server:
            url = f"wss://localhost:{server.sockets[0].getsockname()[1]}"

            async def talk() -> str:
                async with connect(url, ssl=client_ssl(), proxy=None) as ws:
                    await ws.send("ping")
                    reply: str = await ws.recv()
                    return reply

            await sweep(talk, "ping")

    # The server logs handshakes that a cancelled client broke off; fine.
    caplog.set_level(logging.CRITICAL, logger="websockets")
    rt.run(main)

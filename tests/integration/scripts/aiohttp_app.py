"""An ordinary aiohttp program: HTTP and a websocket over HTTPS, all on 127.0.0.1.

Run by test_scripts.py as ``python -m tidal run aiohttp_app.py`` and, as the
oracle, ``python aiohttp_app.py``; prints a JSON report on stdout.
"""

import asyncio
import json
import ssl
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

CERTS = Path(__file__).resolve().parent.parent.parent / "io" / "certs"


def contexts():
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(CERTS / "cert.pem", CERTS / "key.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(CERTS / "ca.pem")
    return server, client


async def hello(request):
    return web.Response(text=f"hello {request.match_info['name']}")


async def echo_ws(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data.upper())
    return ws


async def main():
    task_class = type(asyncio.current_task())
    report = {
        "loop": type(asyncio.get_running_loop()).__module__,
        "task": f"{task_class.__module__}.{task_class.__qualname__}",
    }
    server_ctx, client_ctx = contexts()
    app = web.Application()
    app.router.add_get("/hello/{name}", hello)
    app.router.add_get("/ws", echo_ws)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx).start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_ctx)
        ) as session:
            texts = []
            for name in ("a", "b", "c"):
                async with session.get(f"{url}/hello/{name}") as resp:
                    texts.append(await resp.text())
            async with session.ws_connect(f"{url}/ws") as ws:
                await ws.send_str("shout")
                texts.append(await ws.receive_str())
        report["result"] = texts
    finally:
        await runner.cleanup()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())

"""The libraries under ``import tidal as asyncio``: application code on tidal's own API.

The application's code (handlers, fan-out, timeouts) uses the module under
test, ``aio`` (tidal, or asyncio as the oracle), while the libraries keep
calling asyncio.  So tidal's API must work inside tasks the libraries create
(from 3.12 aiohttp runs handlers in eager ``asyncio.Task`` objects on the
running loop) and around awaitables the libraries hand back.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from integ_support import HOST, aiohttp_server, stream_server

import tidal


def run(aio: ModuleType, main: Any) -> Any:
    async def checked() -> Any:
        loop = aio.get_running_loop()
        assert type(loop).__module__.startswith(aio.__name__)
        assert isinstance(aio.current_task(), aio.Task)
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        async with aio.timeout(10):
            result = await main()
        assert not errors
        return result

    return aio.run(checked())


def test_aiohttp_handler_on_the_module_api(aio: ModuleType) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    web = pytest.importorskip("aiohttp.web")

    async def handler(request: Any) -> Any:
        task = aio.current_task()
        assert task is asyncio.current_task() and task is not None
        out: list[Any] = []
        try:
            async with aio.timeout(0.01):
                await aio.sleep(5)
        except TimeoutError:
            out.append("timeout")
        try:
            await aio.wait_for(aio.sleep(5), 0.01)
        except TimeoutError:
            out.append("wait_for")
        async with aio.TaskGroup() as tg:
            child = tg.create_task(aio.sleep(0.001, "child"))
        out.append(child.result())
        out.append(await aio.gather(aio.sleep(0, 1), aio.sleep(0, 2)))
        out.append(await aio.shield(aio.sleep(0, "shield")))
        async with aio.Lock():
            out.append("lock")
        queue: Any = aio.Queue()
        await queue.put("queue")
        out.append(await queue.get())
        event = aio.Event()
        aio.get_running_loop().call_soon(event.set)
        await event.wait()
        out.append(await aio.to_thread(lambda: "thread"))
        return web.json_response(out)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with aiohttp_server(app) as url, aiohttp.ClientSession() as s:
            replies = await aio.gather(*(s.get(url) for _ in range(5)))
            for r in replies:
                assert await r.json() == ["timeout", "wait_for", "child", [1, 2], "shield",
                                          "lock", "queue", "thread"]
                r.release()

    run(aio, main)


def test_httpx_fan_out_on_the_module_api(aio: ModuleType) -> None:
    httpx = pytest.importorskip("httpx")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            delay = int(head.split(b" ", 2)[1].strip(b"/"))
            await asyncio.sleep(delay / 1000)
            body = b"%d" % delay
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    async def main() -> None:
        async with stream_server(serve) as port, \
                httpx.AsyncClient(base_url=f"http://{HOST}:{port}", trust_env=False) as c:
            limit = aio.Semaphore(3)

            async def get(delay: int) -> str:
                async with limit:
                    text: str = (await c.get(f"/{delay}")).text
                    return text

            delays = [30, 1, 20, 5, 10]
            order = [await f for f in aio.as_completed([get(d) for d in delays])]
            assert sorted(order, key=int) == [str(d) for d in sorted(delays)]
            tasks = [aio.create_task(get(d)) for d in (200, 1)]
            done, pending = await aio.wait(tasks, return_when=aio.FIRST_COMPLETED)
            assert [t.result() for t in done] == ["1"]
            for t in pending:
                t.cancel()
            await aio.wait(pending)

    run(aio, main)


def test_websockets_fan_out_on_the_module_api(aio: ModuleType) -> None:
    pytest.importorskip("websockets.asyncio.server")
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        # One reader task and one writer task per connection, joined by a queue.
        queue: Any = aio.Queue(maxsize=4)

        async def read() -> None:
            async for message in ws:
                await queue.put(message)
            await queue.put(None)

        async def write() -> None:
            while (message := await queue.get()) is not None:
                await ws.send(message.upper())

        if aio is tidal:
            assert isinstance(aio.current_task(), tidal.Task)  # loop.create_task()
        async with aio.TaskGroup() as tg:
            tg.create_task(read())
            tg.create_task(write())

    async def main() -> None:
        async with serve(handler, HOST, 0) as server:
            url = f"ws://{HOST}:{server.sockets[0].getsockname()[1]}"

            async def client(n: int) -> list[Any]:
                async with connect(url, proxy=None) as ws:
                    for i in range(20):
                        await ws.send(f"c{n}m{i}")
                    return [await ws.recv() for _ in range(20)]

            results = await aio.gather(*(client(n) for n in range(5)))
            assert results == [[f"C{n}M{i}" for i in range(20)] for n in range(5)]

    run(aio, main)

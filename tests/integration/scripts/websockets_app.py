"""An ordinary websockets program: an echo server and a client on 127.0.0.1.

Run by test_scripts.py as ``python -m tidal run websockets_app.py`` and, as
the oracle, ``python websockets_app.py``; prints a JSON report on stdout.
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError


async def echo(ws):
    try:
        async for message in ws:
            if message == "bye":
                await ws.close(4002, "asked to")
            else:
                await ws.send(message[::-1])
    except ConnectionClosed:
        pass


async def main():
    task_class = type(asyncio.current_task())
    report = {
        "loop": type(asyncio.get_running_loop()).__module__,
        "task": f"{task_class.__module__}.{task_class.__qualname__}",
    }
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", proxy=None) as ws:
            got = []
            for word in ("tide", "wave", "moon"):
                await ws.send(word)
                got.append(await ws.recv())
            await ws.ping()
            await ws.send("bye")
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                got.append([exc.rcvd.code, exc.rcvd.reason])
    report["result"] = got
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())

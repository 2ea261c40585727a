"""An ordinary httpx program against a hand-written HTTP server on 127.0.0.1.

Run by test_scripts.py as ``python -m tidal run httpx_app.py`` and, as the
oracle, ``python httpx_app.py``; prints a JSON report on stdout.
"""

import asyncio
import json
import sys

import httpx

handlers = set()


async def serve(reader, writer):
    handlers.add(asyncio.current_task())
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            body = b"you asked for " + path
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()
        await writer.wait_closed()


async def main():
    task_class = type(asyncio.current_task())
    report = {
        "loop": type(asyncio.get_running_loop()).__module__,
        "task": f"{task_class.__module__}.{task_class.__qualname__}",
    }
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
        replies = await asyncio.gather(*(c.get(f"/{i}") for i in range(10)))
    # The client closed its connections: each handler sees EOF and ends.
    await asyncio.wait(handlers)
    server.close()
    await server.wait_closed()
    report["result"] = [r.text for r in replies]
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())

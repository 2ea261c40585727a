"""A concurrent crawler, on tidal's own API.

It starts a small HTTP server on 127.0.0.1 whose pages each take a while to
answer (like a real, remote site), then fetches a few hundred of them
concurrently with a cap on connections in flight, and compares the wall time
with what fetching them one by one would have taken.

    python examples/crawler.py [--pages 300] [--limit 50] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import time

import tidal as asyncio


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float
) -> None:
    """Serve GET /page/N: links to the next pages, after *latency* seconds."""
    try:
        while True:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1].decode()
            await asyncio.sleep(latency)  # the "network" and the server's work
            n = int(path.rsplit("/", 1)[1])
            body = f"<html>page {n}: <a href='/page/{2 * n}'> <a href='/page/{2 * n + 1}'></html>"
            data = body.encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                + f"Content-Length: {len(data)}\r\n\r\n".encode() + data
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def fetch(host: str, port: int, path: str) -> bytes:
    """One HTTP/1.1 GET on its own connection; returns the body."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


async def crawl(pages: int, limit: int, latency: float) -> None:
    """Crawl pages 1..*pages* with at most *limit* requests in flight."""
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, latency), "127.0.0.1", 0, backlog=1024
    )
    host, port = server.sockets[0].getsockname()[:2]
    seen: set[int] = set()
    gate = asyncio.Semaphore(limit)

    async def visit(n: int) -> None:
        async with gate:
            body = await fetch(host, port, f"/page/{n}")
        for link in body.split(b"href='/page/")[1:]:
            child = int(link.split(b"'", 1)[0])
            if child <= pages and child not in seen:
                seen.add(child)
                tg.create_task(visit(child))

    started = time.perf_counter()
    async with server:
        async with asyncio.TaskGroup() as tg:
            seen.add(1)
            tg.create_task(visit(1))
    wall = time.perf_counter() - started
    print(f"fetched {len(seen)} pages with up to {limit} in flight in {wall:.2f} s")
    print(f"one by one it would take at least {len(seen) * latency:.2f} s "
          f"({len(seen) * latency / wall:.0f}x longer)")


def main() -> None:
    """Parse the arguments and run the crawl on tidal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    asyncio.run(crawl(args.pages, args.limit, args.latency))


if __name__ == "__main__":
    main()

"""Real code under the virtual clock, through the pytest plugin's ``tidal_clock``.

Each test would take minutes of real time; on virtual time it takes
milliseconds and every timeout hits at exactly its virtual deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tidal.testing import VirtualClock


async def retry_with_backoff(op: Any, *, base: float = 1.0, cap: float = 60.0) -> Any:
    """Call ``await op()`` until it succeeds, sleeping 1, 2, 4... s (capped, jittered) between."""
    delay = base
    while True:
        try:
            return await op()
        except ConnectionError:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, cap)


async def test_backoff_over_ten_virtual_minutes(tidal_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    attempts: list[float] = []

    async def flaky() -> str:
        attempts.append(loop.time())
        if loop.time() < 600:  # the service is down for ten minutes
            raise ConnectionError("down")
        return "up"

    wall = time.perf_counter()
    assert await retry_with_backoff(flaky) == "up"
    assert time.perf_counter() - wall < 1
    assert attempts[-1] >= 600 > attempts[-2]
    assert attempts[-1] - attempts[-2] <= 60  # the cap held
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(0.5 * min(2**i, 60) <= g <= min(2**i, 60) for i, g in enumerate(gaps))
    assert tidal_clock.jumps == len(gaps)


async def test_wait_for_hits_at_the_virtual_deadline(tidal_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(3600), timeout=90)
    assert loop.time() == start + 90
    assert await asyncio.wait_for(asyncio.sleep(89.5, "in time"), timeout=90) == "in time"
    assert loop.time() == start + 179.5


async def test_timeout_hits_at_the_virtual_deadline(tidal_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 42.125
    with pytest.raises(TimeoutError):
        async with asyncio.timeout_at(deadline):
            await asyncio.Event().wait()
    assert loop.time() == deadline
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(7):
            while True:
                await asyncio.sleep(0.5)
    assert loop.time() == deadline + 7


async def _read_line(port: int, read_timeout: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"ping\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), read_timeout)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_local_tcp_server_with_a_read_timeout(tidal_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()

    async def slow_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        await asyncio.sleep(45)  # a slow backend
        writer.write(line)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(slow_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        wall = time.perf_counter()
        assert await _read_line(port, read_timeout=60) == b"ping\n"
        assert loop.time() == 45
        start = loop.time()
        with pytest.raises(TimeoutError):
            await _read_line(port, read_timeout=30)
        assert loop.time() == start + 30
        assert time.perf_counter() - wall < 1
        await asyncio.sleep(60)  # let the server's last handler finish


async def test_aiohttp_client_timeout_against_a_silent_server(tidal_clock: VirtualClock) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    loop = asyncio.get_running_loop()
    handlers: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(writer)
        await reader.read()  # reads the request, then waits for the client to go

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        wall = time.perf_counter()
        start = loop.time()
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            with pytest.raises(TimeoutError):
                await session.get(f"http://127.0.0.1:{port}/")
        # aiohttp rounds deadlines over 5 s up to a whole second of loop time.
        assert start + 120 <= loop.time() <= start + 121
        assert time.perf_counter() - wall < 2
        for writer in handlers:
            writer.close()


@pytest.fixture
def thread_server() -> Iterator[int]:
    """A TCP server in another thread that accepts and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    accepted: list[socket.socket] = []

    def serve() -> None:
        try:
            accepted.append(listener.accept()[0])
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join()
        for conn in accepted:
            conn.close()


async def test_aiohttp_timeout_against_another_thread_with_io_grace(
    tidal_clock: VirtualClock, thread_server: int
) -> None:
    # The server is outside the loop: the clock would follow real time while
    # the request is pending. io_grace lets it jump after 50 ms of silence.
    aiohttp = pytest.importorskip("aiohttp")
    tidal_clock.io_grace = 0.05
    loop = asyncio.get_running_loop()
    start = loop.time()
    wall = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        with pytest.raises(TimeoutError):
            await session.get(f"http://127.0.0.1:{thread_server}/")
    assert start + 300 <= loop.time() <= start + 301
    assert time.perf_counter() - wall < 2

"""Network workloads: a socketpair stream round trip, TCP echo and HTTP servers.

The servers run in the runtime under test; their clients run in a separate
process (:mod:`.loadgen`), the same client for every runtime.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tidal._tools.bench import loadgen
from tidal._tools.bench.registry import REQ_PER_S, US_PER_OP, Workload, register, run_main

CONNECTIONS = 10
HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
)
_HEAD_END = b"\r\n\r\n"
_LOADGEN = str(Path(loadgen.__file__).resolve())


def spawn_loadgen(mode: str, port: int, size: int, duration_ms: int) -> subprocess.Popen[bytes]:
    """Start the client process against 127.0.0.1:*port* (see :mod:`.loadgen`)."""
    duration = duration_ms / 1000
    warmup = min(0.2, duration / 3)
    # -I: the client sees neither this package nor the environment's paths.
    return subprocess.Popen(
        [sys.executable, "-I", _LOADGEN, "--mode", mode, "--port", str(port),
         "--size", str(size), "--conns", str(CONNECTIONS),
         "--duration", str(duration), "--warmup", str(warmup)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def loadgen_rate(proc: subprocess.Popen[bytes]) -> dict[str, float]:
    """Wait for the client and return ``{"rate": requests per second}``."""
    out, err = proc.communicate()
    lines = out.decode(errors="replace").strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    if proc.returncode != 0 or "rate" not in result:
        detail = result.get("error") or err.decode(errors="replace").strip()[-500:]
        raise RuntimeError(f"load generator failed: {detail}")
    return {REQ_PER_S.key: float(result["rate"])}


async def _drive(aio: Any, server: Any, mode: str, size: int, duration_ms: int) -> dict[str, float]:
    port = server.sockets[0].getsockname()[1]
    proc = spawn_loadgen(mode, port, size, duration_ms)
    try:
        await loadgen.until_exited(aio, proc)
    finally:
        server.close()
    return loadgen_rate(proc)


async def _echo_handler(reader: Any, writer: Any) -> None:
    try:
        while True:
            data = await reader.read(1 << 18)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class _EchoProtocol(asyncio.Protocol):
    """Echo with protocols: write back whatever arrives."""

    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None

    def eof_received(self) -> bool:
        return False


async def _http_handler(reader: Any, writer: Any) -> None:
    try:
        while True:
            await reader.readuntil(_HEAD_END)
            writer.write(HTTP_RESPONSE)
            await writer.drain()
    except (ConnectionError, EOFError):  # IncompleteReadError is an EOFError
        pass
    finally:
        writer.close()


class _HttpProtocol(_EchoProtocol):
    """HTTP/1.1 keep-alive with protocols: one canned response per request head."""

    def __init__(self) -> None:
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        count = buffer.count(_HEAD_END)
        if count:
            buffer = buffer[buffer.rfind(_HEAD_END) + 4:]
            self.transport.write(HTTP_RESPONSE * count)
        self.buffer = buffer


def _server_workload(mode: str, api: str, size: int, doc: str) -> Callable[..., dict[str, float]]:
    def workload(aio: Any, factory: Any, n: int) -> dict[str, float]:
        async def main() -> dict[str, float]:
            if api == "streams":
                handler = _http_handler if mode == "http" else _echo_handler
                server = await aio.start_server(handler, "127.0.0.1", 0)
            else:
                loop = aio.get_running_loop()
                proto = _HttpProtocol if mode == "http" else _EchoProtocol
                server = await loop.create_server(proto, "127.0.0.1", 0)
            return await _drive(aio, server, mode, size, n)

        result: dict[str, float] = run_main(aio, factory, main)
        return result

    workload.__doc__ = doc
    workload.__name__ = f"{mode}_{api}"
    return workload


def stream_socketpair(aio: Any, factory: Any, n: int) -> dict[str, float]:
    """One op: a 1 KiB round trip over a socketpair with streams on both ends.

    ``open_connection(sock=...)`` on each end; one side writes 1 KiB and
    reads the echo, the other reads exactly 1 KiB and writes it back.
    """
    payload = b"x" * 1024

    async def main() -> float:
        left, right = socket.socketpair()
        reader_a, writer_a = await aio.open_connection(sock=left)
        reader_b, writer_b = await aio.open_connection(sock=right)

        async def echo() -> None:
            for _ in range(n):
                writer_b.write(await reader_b.readexactly(1024))
                await writer_b.drain()

        echoer = aio.create_task(echo())
        start = time.perf_counter()
        for _ in range(n):
            writer_a.write(payload)
            await writer_a.drain()
            await reader_a.readexactly(1024)
        elapsed = time.perf_counter() - start
        await echoer
        writer_a.close()
        writer_b.close()
        return elapsed

    return {US_PER_OP.key: run_main(aio, factory, main) / n * 1e6}


register(Workload(
    "stream_socketpair", "1 KiB socketpair stream rt", stream_socketpair, 20_000, 1_000,
    floor="floor_socketpair",
))
for _api in ("streams", "protocols"):
    for _size, _label in ((1024, "1 KiB"), (16384, "16 KiB"), (65536, "64 KiB")):
        register(Workload(
            f"tcp_echo_{_api}_{_size // 1024}k", f"TCP echo {_api}, {_label}",
            _server_workload("echo", _api, _size, (
                f"One op: one {_label} request echoed by a TCP server on {_api}.\n\n"
                f"{CONNECTIONS} connections from a client process, one request in "
                "flight on each; requests per second."
            )),
            1_000, 150, metrics=(REQ_PER_S,), floor=f"floor_tcp_echo_{_size // 1024}k",
            in_process_repeats=False, quick=_size == 1024, timeout=60,
        ))
    register(Workload(
        f"http_{_api}", f"HTTP keep-alive, {_api}",
        _server_workload("http", _api, 0, (
            f"One op: one HTTP/1.1 keep-alive GET answered by a tiny server on {_api}.\n\n"
            f"{CONNECTIONS} connections from a raw-socket client process, one request "
            "in flight on each; requests per second."
        )),
        1_000, 150, metrics=(REQ_PER_S,), floor="floor_http",
        in_process_repeats=False, timeout=60,
    ))

"""Load generator for the network workloads: a raw-socket client in its own process.

Run as ``python -I loadgen.py --mode echo|http --port P ...``.  It opens
``--conns`` TCP connections to 127.0.0.1, keeps one request in flight on each
(send, read the whole reply, send again) for ``--warmup`` then ``--duration``
seconds, and prints one JSON line: requests completed in the timed window and
requests per second.  It uses the standard library only and no event loop,
so every runtime is loaded by the same client, and its cost is the same for
all of them (the raw floor rows show how far this client itself can go).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import subprocess
import sys
import time
from typing import Any

HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: tidal-loadgen\r\n\r\n"
_RECV = 1 << 16


class _Conn:
    __slots__ = ("expected", "inbuf", "need", "pending", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.need = 0  # echo: bytes of the reply still to come
        self.expected = -1  # http: length of the current reply once known
        self.inbuf = bytearray()
        self.pending: memoryview | None = None  # request bytes not yet sent


def _http_reply_length(buf: bytearray) -> int:
    """Length of the complete reply at the start of *buf*, or -1 if headers are incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return -1
    length = 0
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return end + 4 + length


def run(mode: str, host: str, port: int, size: int, conns: int,
        duration: float, warmup: float) -> dict[str, float]:
    """Drive the server at *host*:*port*; return the counts of the timed window."""
    request = HTTP_REQUEST if mode == "http" else b"x" * size
    poller = select.epoll()
    by_fd: dict[int, _Conn] = {}
    for _ in range(conns):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        by_fd[sock.fileno()] = _Conn(sock)
        poller.register(sock.fileno(), select.EPOLLIN)

    completed = 0

    def send_request(fd: int, conn: _Conn) -> None:
        conn.need = len(request)
        sent = conn.sock.send(request)
        if sent < len(request):
            conn.pending = memoryview(request)[sent:]
            poller.modify(fd, select.EPOLLIN | select.EPOLLOUT)

    def on_readable(fd: int, conn: _Conn) -> None:
        nonlocal completed
        data = conn.sock.recv(_RECV)
        if not data:
            raise ConnectionError("server closed the connection")
        if mode == "http":
            conn.inbuf += data
            if conn.expected < 0:
                conn.expected = _http_reply_length(conn.inbuf)
            if conn.expected < 0 or len(conn.inbuf) < conn.expected:
                return
            del conn.inbuf[:conn.expected]
            conn.expected = -1
        else:
            conn.need -= len(data)
            if conn.need > 0:
                return
        completed += 1
        send_request(fd, conn)

    def on_writable(fd: int, conn: _Conn) -> None:
        assert conn.pending is not None
        sent = conn.sock.send(conn.pending)
        conn.pending = conn.pending[sent:]
        if not conn.pending:
            conn.pending = None
            poller.modify(fd, select.EPOLLIN)

    for fd, conn in by_fd.items():
        send_request(fd, conn)
    now = time.perf_counter()
    window_start = now + warmup
    window_end = window_start + duration
    counted_from = -1
    started_at = now
    while now < window_end:
        if counted_from < 0 and now >= window_start:
            counted_from, started_at = completed, now
        wait = (window_start if counted_from < 0 else window_end) - now
        for fd, events in poller.poll(max(wait, 0.0)):
            conn = by_fd[fd]
            if events & select.EPOLLOUT:
                on_writable(fd, conn)
            if events & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                on_readable(fd, conn)
        now = time.perf_counter()
    for conn in by_fd.values():
        conn.sock.close()
    poller.close()
    done = completed - max(counted_from, 0)
    seconds = now - started_at
    return {"requests": done, "seconds": seconds, "rate": done / seconds if seconds else 0.0}


async def until_exited(aio: Any, proc: subprocess.Popen[bytes]) -> None:
    """Wait in the runtime under test (*aio*) for a load generator *proc* to exit.

    Polling keeps this free of subprocess support in the runtime under test;
    50 wake-ups a second are noise next to the traffic.  If the wait ends any
    other way (cancelled, an error), the generator is killed.
    """
    try:
        while proc.poll() is None:
            await aio.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the load, print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("echo", "http"), default="echo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.2)
    opts = parser.parse_args(argv)
    try:
        result = run(opts.mode, opts.host, opts.port, opts.size, opts.conns,
                     opts.duration, opts.warmup)
    except OSError as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the integration tests: the runtimes, TLS contexts, local servers.

Everything here is written against the plain ``asyncio`` API, so it runs on
whichever loop the test runs on.  Only loopback addresses are used.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import tidal

CERTS = Path(__file__).resolve().parent.parent / "io" / "certs"
HOST = "127.0.0.1"

# A hang fails the test after this many seconds instead of stalling the run.
GUARD = 10.0

ENTRY_POINTS = ("tidal.run", "loop_factory", "asyncio")


class Runtime:
    """One way of running an asyncio program: on tidal, or on asyncio itself."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tidal = kind != "asyncio"

    def __repr__(self) -> str:
        return f"<Runtime {self.kind}>"

    def check_loop(self) -> None:
        """Assert that the running loop is tidal's (or asyncio's, for the oracle)."""
        loop = asyncio.get_running_loop()
        module = type(loop).__module__
        if self.tidal:
            assert module.startswith("tidal"), f"not a tidal loop: {type(loop)!r}"
        else:
            assert module.startswith("asyncio"), f"not an asyncio loop: {type(loop)!r}"

    def check(self) -> None:
        """Assert the loop, and that the current task is a tidal.Task (asyncio's for the oracle).

        Libraries may build their own tasks with ``asyncio.Task(coro, loop=...)``
        (aiohttp does), so inside their callbacks use :meth:`check_loop`.
        """
        self.check_loop()
        task = asyncio.current_task()
        assert task is not None
        if self.tidal:
            assert isinstance(task, tidal.Task), f"not a tidal Task: {type(task)!r}"
        else:
            assert not isinstance(task, tidal.Task)
            assert isinstance(task, asyncio.Task)

    def run(self, main: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``main(*args)`` to completion in a fresh loop of this runtime."""
        errors: list[dict[str, Any]] = []

        async def guarded() -> Any:
            self.check()
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
            async with asyncio.timeout(GUARD):
                return await main(*args)

        if self.kind == "tidal.run":
            result = tidal.run(guarded())
        elif self.kind == "loop_factory":
            if sys.version_info >= (3, 12):
                result = asyncio.run(guarded(), loop_factory=tidal.new_event_loop)
            else:
                with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
                    result = runner.run(guarded())
        else:
            result = asyncio.run(guarded())
        assert not errors, f"exception handler called: {errors!r}"
        return result


def server_ssl() -> ssl.SSLContext:
    """A server context presenting the shipped 'localhost'/127.0.0.1 certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERTS / "cert.pem", CERTS / "key.pem")
    return ctx


def client_ssl() -> ssl.SSLContext:
    """A client context trusting only the shipped test CA, checking host names."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CERTS / "ca.pem")
    return ctx


def untrusting_ssl() -> ssl.SSLContext:
    """A client context trusting only a CA that did not sign the server's certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CERTS / "other_ca.pem")
    return ctx


def payload(size: int) -> bytes:
    """*size* bytes of a pattern that a shifted or dropped chunk would not reproduce."""
    block = hashlib.sha256(b"tidal").digest() * 2048 + bytes(range(251))
    out = bytearray()
    while len(out) < size:
        out += block
    return bytes(out[:size])


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def send_while_receiving(send: Callable[[str], Awaitable[Any]],
                               receive: Callable[[], Awaitable[Any]],
                               messages: list[str]) -> list[Any]:
    """Send every message while receiving as many replies, concurrently; return the replies."""

    async def sender() -> None:
        for message in messages:
            await send(message)

    async def receiver() -> list[Any]:
        return [await receive() for _ in messages]

    _, replies = await asyncio.gather(sender(), receiver())
    return replies


@asynccontextmanager
async def aiohttp_server(app: Any, *, ssl_context: ssl.SSLContext | None = None,
                         shutdown_timeout: float = 1.0, sock: Any = None,
                         **handler_options: Any) -> AsyncIterator[str]:
    """Serve an aiohttp application on 127.0.0.1; yield its base URL; clean up after.

    With *sock*, serve on that listening socket (``web.SockSite``, which is
    ``loop.create_server(sock=...)``) instead of binding a port.
    *handler_options* go to aiohttp's request handler (``keepalive_timeout``...).
    """
    from aiohttp import web

    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, **handler_options)
    await runner.setup()
    try:
        if sock is not None:
            site: Any = web.SockSite(runner, sock, ssl_context=ssl_context)
        else:
            site = web.TCPSite(runner, HOST, 0, ssl_context=ssl_context)
        await site.start()
        port = runner.addresses[0][1]
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://{HOST}:{port}"
    finally:
        await runner.cleanup()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def stream_server(handler: Handler, *, ssl_context: ssl.SSLContext | None = None,
                        unix: str | None = None) -> AsyncIterator[int]:
    """An ``asyncio.start_server`` server on 127.0.0.1; yield its port.

    With *unix*, an ``asyncio.start_unix_server`` server on that path instead
    (the port yielded is then 0).

    Each connection's writer is closed after its handler returns, whatever
    happened, so that ``wait_closed()`` (which waits for connections from
    3.12.1) cannot hang.
    """

    handlers: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            try:
                await handler(reader, writer)
            finally:
                writer.close()
                await writer.wait_closed()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # by the server's exit below; the task must not end cancelled (3.11)
        finally:
            handlers.discard(task)

    if unix is None:
        server = await asyncio.start_server(run, HOST, 0, ssl=ssl_context)
    else:
        server = await asyncio.start_unix_server(run, unix, ssl=ssl_context)
    try:
        yield 0 if unix is not None else server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # Handlers still running (a relay waiting on its peer, say) end here,
        # not when asyncio.run() cancels what is left: on 3.11, asyncio's
        # streams report such a cancellation to the exception handler.
        for task in list(handlers):
            task.cancel()
        if handlers:
            await asyncio.wait(list(handlers))
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """Read one HTTP/1.1 request: (method, target, lower-cased headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


def response_head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def connect_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP CONNECT proxy: open the tunnel, then relay both ways."""
    method, target, _headers, _ = await read_request(reader)
    assert method == "CONNECT"
    host, _, port = target.rpartition(":")
    assert host in (HOST, "localhost")  # loopback only
    up_reader, up_writer = await asyncio.open_connection(host, int(port))
    writer.write(response_head("200 Connection established", {}))

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()
        except ConnectionError:
            pass

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        up_writer.close()

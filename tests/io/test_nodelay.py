"""TCP_NODELAY on every TCP stream socket a transport wraps: a deliberate difference.

asyncio sets it only when ``sock.proto == IPPROTO_TCP``, so a socket made as
``socket.socket(AF_INET, SOCK_STREAM)`` (proto 0; uvicorn binds its sockets so)
keeps Nagle and a request/response exchange stalls on delayed ACKs.  tidal
sets it whatever the proto, as uvloop does.  asyncio's side is asserted too,
so the README's list of differences stays true.
"""

from __future__ import annotations

import asyncio
import socket
from types import ModuleType
from typing import Any

import pytest


def nodelay(transport: Any) -> bool:
    sock = transport.get_extra_info("socket")
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


@pytest.mark.parametrize("proto", [0, socket.IPPROTO_TCP], ids=["proto0", "tcp"])
def test_nodelay_on_tcp_transports(aio: ModuleType, loop: Any, is_tidal: bool, proto: int) -> None:
    async def main() -> tuple[bool, bool]:
        accepted = loop.create_future()

        class Keep(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                if not accepted.done():
                    accepted.set_result(transport)

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
        assert listener.proto == proto
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        server = await loop.create_server(Keep, sock=listener)
        csock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
        csock.setblocking(False)
        await loop.sock_connect(csock, listener.getsockname())
        client, _ = await loop.create_connection(asyncio.Protocol, sock=csock)
        served = await asyncio.wait_for(accepted, 5)
        try:
            return nodelay(client), nodelay(served)
        finally:
            client.close()
            served.close()
            server.close()
            await server.wait_closed()

    client_nodelay, served_nodelay = loop.run_until_complete(main())
    # asyncio: only for proto == IPPROTO_TCP; tidal: every TCP stream socket.
    expected = is_tidal or proto == socket.IPPROTO_TCP
    assert (client_nodelay, served_nodelay) == (expected, expected)


def test_nodelay_on_open_connection(aio: ModuleType, loop: Any) -> None:
    # The usual path (getaddrinfo gives proto 6): both set it.
    async def main() -> bool:
        async def handler(reader: Any, writer: Any) -> None:
            writer.close()

        server = await aio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await aio.open_connection("127.0.0.1", port)
        try:
            return nodelay(writer.transport)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert loop.run_until_complete(main())

"""No file descriptor outlives what opened it, on success or failure paths."""

from __future__ import annotations

import asyncio
import socket
from types import ModuleType
from typing import Any

import pytest


def _free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def test_failures_leak_nothing(aio: ModuleType, loop: Any, fd_count: Any, tmp_path: Any) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", _free_port())
        with pytest.raises(OSError):
            await loop.create_server(asyncio.Protocol, "127.0.0.1",
                                     taken.getsockname()[1], reuse_address=False)
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(asyncio.Protocol, str(tmp_path / "nothing"))
        with pytest.raises(ConnectionRefusedError):
            await aio.open_connection("127.0.0.1", _free_port())

    with taken:
        loop.run_until_complete(main())  # the executor's threads start here
        before = fd_count()
        loop.run_until_complete(main())
        assert fd_count() == before


def test_every_transport_kind_closes_its_socket(aio: ModuleType, loop: Any, fd_count: Any,
                                                tmp_path: Any) -> None:
    async def main() -> None:
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(asyncio.Protocol,
                                             *srv.sockets[0].getsockname()[:2])
        tr.close()
        usrv = await aio.start_unix_server(lambda r, w: w.close(), str(tmp_path / "u"))
        reader, writer = await aio.open_unix_connection(str(tmp_path / "u"))
        await reader.read()
        writer.close()
        await writer.wait_closed()
        dt, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    local_addr=("127.0.0.1", 0))
        dt.abort()
        for s in (srv, usrv):
            s.close()
            await s.wait_closed()
        await aio.sleep(0.01)

    loop.run_until_complete(main())
    before = fd_count()
    loop.run_until_complete(main())
    assert fd_count() == before

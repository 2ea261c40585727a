"""loop.sendfile() over a transport: os.sendfile(), the read-and-write fallback, errors."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import pytest

DATA = os.urandom(1024 * 1024 + 123)


class Sink(asyncio.Protocol):
    def __init__(self, loop: Any) -> None:
        self.data = bytearray()
        self.done = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.done.set_result(bytes(self.data))


async def _sendfile(loop: Any, native: bool, offset: int = 0, count: int | None = None
                    ) -> tuple[int, int, bytes, bool]:
    sinks: list[Sink] = []

    def factory() -> Sink:
        sinks.append(Sink(loop))
        return sinks[-1]

    srv = await loop.create_server(factory, "127.0.0.1", 0)
    tr, _proto = await loop.create_connection(asyncio.Protocol,
                                             *srv.sockets[0].getsockname()[:2])
    with tempfile.TemporaryFile() as f:
        f.write(DATA)
        f.seek(0)
        if native:
            sent = await loop.sendfile(tr, f, offset, count)
        else:
            sent = await loop._sendfile_fallback(tr, f, offset, count)
        pos = f.tell()
    reading = tr.is_reading()
    tr.write_eof()
    got = await sinks[0].done
    tr.close()
    srv.close()
    await srv.wait_closed()
    return sent, pos, got, reading


@pytest.mark.parametrize("native", [True, False])
def test_sendfile_whole_and_range(loop: Any, native: bool) -> None:
    sent, pos, got, reading = loop.run_until_complete(_sendfile(loop, native))
    assert (sent, pos, got, reading) == (len(DATA), len(DATA), DATA, True)
    sent, pos, got, _ = loop.run_until_complete(_sendfile(loop, native, 1000, 5000))
    assert (sent, pos, got) == (5000, 6000, DATA[1000:6000])


def test_sendfile_closing_transport(loop: Any) -> None:
    async def main() -> None:
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(asyncio.Protocol,
                                             *srv.sockets[0].getsockname()[:2])
        tr.close()
        with tempfile.TemporaryFile() as f, pytest.raises(RuntimeError,
                                                          match=r"^Transport is closing$"):
            await loop.sendfile(tr, f)
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())


def test_sendfile_datagram_unsupported(loop: Any) -> None:
    async def main() -> None:
        tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    local_addr=("127.0.0.1", 0))
        with tempfile.TemporaryFile() as f, pytest.raises(RuntimeError, match=(
            r"^sendfile is not supported for transport <_SelectorDatagramTransport fd=\d+ "
            r"read=polling write=<idle, bufsize=0>>$"
        )):
            await loop.sendfile(tr, f)
        tr.close()

    loop.run_until_complete(main())

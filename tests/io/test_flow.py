"""Write flow control: a fast writer, a slow reader, nothing lost or duplicated."""

from __future__ import annotations

import asyncio
import hashlib
import os
from types import ModuleType
from typing import Any

import pytest

SIZE = 30 * 1024 * 1024


@pytest.fixture
def loop(virtual_loop: Any) -> Any:
    """Virtual time on tidal (tests/conftest.py): a reader's "slow start" and the
    polls below end only once the connection is quiet, so the writer has
    certainly filled every buffer and paused; asyncio's loop stays real."""
    return virtual_loop


def test_30mb_to_slow_reader(aio: ModuleType, loop: Any) -> None:
    payload = os.urandom(1024 * 1024) * 30
    assert len(payload) == SIZE
    expected = hashlib.sha256(payload).hexdigest()

    async def main() -> tuple[str, int, int]:
        done = loop.create_future()
        paused = 0
        drains = 0

        async def handle(reader: Any, writer: Any) -> None:
            # Slow start: the writer must fill every buffer and pause.
            await aio.sleep(0.05)
            digest = hashlib.sha256()
            total = 0
            while True:
                chunk = await reader.read(1024 * 1024)
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
            writer.close()
            done.set_result((digest.hexdigest(), total))

        srv = await aio.start_server(handle, "127.0.0.1", 0)
        _reader, writer = await aio.open_connection(*srv.sockets[0].getsockname()[:2])
        transport = writer.transport
        view = memoryview(payload)
        for i in range(0, SIZE, 256 * 1024):
            writer.write(view[i:i + 256 * 1024])
            if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
                paused += 1
            drains += 1
            await writer.drain()
        writer.write_eof()
        digest, total = await done
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return digest, total, paused

    digest, total, paused = loop.run_until_complete(main())
    assert total == SIZE
    assert digest == expected
    assert paused > 0  # the writer really had to wait


def test_pause_and_resume_writing_calls(loop: Any) -> None:
    events: list[str] = []

    class Writer(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def pause_writing(self) -> None:
            events.append("pause")

        def resume_writing(self) -> None:
            events.append("resume")

    async def main() -> None:
        reading = loop.create_future()

        class Sink(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                transport.pause_reading()
                reading.set_result(transport)

            def data_received(self, data: bytes) -> None:
                pass

        srv = await loop.create_server(Sink, "127.0.0.1", 0)
        tr, _proto = await loop.create_connection(Writer, *srv.sockets[0].getsockname()[:2])
        tr.set_write_buffer_limits(high=1024)
        server_tr = await reading
        while "pause" not in events:
            tr.write(b"x" * 65536)
        assert tr.get_write_buffer_size() > 1024
        server_tr.resume_reading()
        while "resume" not in events:
            await asyncio.sleep(0.001)
        assert tr.get_write_buffer_size() <= 256
        tr.close()
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())
    assert events == ["pause", "resume"]

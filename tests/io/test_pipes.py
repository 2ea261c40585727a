"""connect_read_pipe / connect_write_pipe, on tidal and on asyncio."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest


class Recorder(asyncio.Protocol):
    """Records every protocol event; ``done`` resolves at connection_lost."""

    def __init__(self, loop: Any) -> None:
        self.events: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        self.done = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        if not self.events or self.events[-1] != "data":
            self.events.append("data")

    def eof_received(self) -> None:
        self.events.append("eof")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.done.set_result(None)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def fds_checked() -> Iterator[None]:
    before = open_fds()
    yield
    import gc

    gc.collect()
    leaked = open_fds() - before
    assert not leaked, leaked


def test_read_pipe_data_eof_and_close(loop: Any, fds_checked: None) -> None:
    async def main() -> Recorder:
        r, w = os.pipe()
        rfile = open(r, "rb", buffering=0)
        tr, proto = await loop.connect_read_pipe(lambda: Recorder(loop), rfile)
        assert proto.events == ["made"]
        assert tr.get_extra_info("pipe") is rfile
        assert tr.is_reading()
        assert not tr.is_closing()
        os.write(w, b"hello ")
        os.write(w, b"world")
        os.close(w)
        await proto.done
        assert rfile.closed
        assert tr.is_closing()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.data == b"hello world"
    assert proto.events == ["made", "data", "eof", ("lost", None)]


def test_read_pipe_pause_and_resume(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        tr, proto = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        tr.pause_reading()
        assert not tr.is_reading()
        tr.pause_reading()  # twice is harmless
        os.write(w, b"x")
        for _ in range(5):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.resume_reading()
        assert tr.is_reading()
        tr.resume_reading()
        while not proto.data:
            await asyncio.sleep(0)
        assert proto.data == b"x"
        tr.close()
        tr.close()
        assert not tr.is_reading()
        tr.resume_reading()  # ignored once closing
        await proto.done
        assert proto.events == ["made", "data", ("lost", None)]
        os.close(w)

    loop.run_until_complete(main())


def test_read_pipe_paused_in_connection_made(loop: Any, fds_checked: None) -> None:
    class PausesAtOnce(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main() -> None:
        r, w = os.pipe()
        os.write(w, b"early")
        os.close(w)
        tr, proto = await loop.connect_read_pipe(lambda: PausesAtOnce(loop), open(r, "rb", 0))
        for _ in range(5):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.resume_reading()
        await proto.done
        assert proto.data == b"early"

    loop.run_until_complete(main())


def test_read_pipe_large_stream(loop: Any, fds_checked: None) -> None:
    payload = os.urandom(1 << 20)

    async def main() -> bytes:
        r, w = os.pipe()
        _tr, proto = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        wtr, wproto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        wtr.write(payload)
        wtr.close()
        await proto.done
        await wproto.done
        return bytes(proto.data)

    assert loop.run_until_complete(main()) == payload


def test_write_pipe_write_and_eof(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        wfile = open(w, "wb", buffering=0)
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), wfile)
        assert tr.get_extra_info("pipe") is wfile
        assert tr.can_write_eof()
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.write(b"abc")
        tr.write(bytearray(b"def"))
        tr.write(memoryview(b"ghi"))
        tr.writelines([b"j", b"k"])
        tr.write(b"")
        assert tr.get_write_buffer_size() == 0
        assert os.read(r, 100) == b"abcdefghijk"
        tr.write_eof()
        assert tr.is_closing()
        tr.write_eof()
        await proto.done
        assert wfile.closed
        assert os.read(r, 100) == b""
        os.close(r)
        assert proto.events == ["made", ("lost", None)]

    loop.run_until_complete(main())


def test_write_pipe_flow_control(loop: Any, fds_checked: None) -> None:
    payload = os.urandom(300_000)

    async def main() -> None:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        tr.write(payload)
        # A pipe holds 64 KiB: the rest is buffered and the protocol paused.
        assert 0 < tr.get_write_buffer_size() <= len(payload)
        assert proto.events == ["made", "pause"]
        got = bytearray()
        os.set_blocking(r, False)
        while len(got) < len(payload):
            try:
                got += os.read(r, 65536)
            except BlockingIOError:
                await asyncio.sleep(0)
        assert bytes(got) == payload
        while tr.get_write_buffer_size():
            await asyncio.sleep(0)
        assert proto.events == ["made", "pause", "resume"]
        tr.close()
        await proto.done
        os.close(r)

    loop.run_until_complete(main())


def test_write_buffer_limits(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        tr.set_write_buffer_limits(high=100)
        assert tr.get_write_buffer_limits() == (25, 100)
        tr.set_write_buffer_limits(low=10)
        assert tr.get_write_buffer_limits() == (10, 40)
        tr.set_write_buffer_limits(high=0)
        assert tr.get_write_buffer_limits() == (0, 0)
        msg = "high (1) must be >= low (2) must be >= 0"
        with pytest.raises(ValueError, match=r"\A" + re.escape(msg) + r"\Z"):
            tr.set_write_buffer_limits(high=1, low=2)
        msg = "high (-2) must be >= low (-1) must be >= 0"
        with pytest.raises(ValueError, match=r"\A" + re.escape(msg) + r"\Z"):
            tr.set_write_buffer_limits(high=-2, low=-1)
        tr.close()
        await proto.done
        os.close(r)

    loop.run_until_complete(main())


def test_write_to_pipe_whose_reader_closed(loop: Any, fds_checked: None) -> None:
    async def main() -> Recorder:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        os.close(r)
        tr.write(b"data")  # EPIPE at once: no log for an OSError
        await proto.done
        for _ in range(7):
            tr.write(b"more")  # dropped, and logged from the fifth on
        return proto

    proto = loop.run_until_complete(main())
    assert proto.events == ["made", ("lost", "BrokenPipeError")]


def test_reader_closing_with_buffered_data(loop: Any, fds_checked: None) -> None:
    async def main() -> Recorder:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        tr.write(b"x" * 200_000)
        assert tr.get_write_buffer_size() > 0
        os.close(r)
        await proto.done
        assert tr.get_write_buffer_size() == 0
        return proto

    proto = loop.run_until_complete(main())
    assert proto.events == ["made", "pause", ("lost", "BrokenPipeError")]


def test_reader_closing_with_empty_buffer(loop: Any, fds_checked: None) -> None:
    async def main() -> Recorder:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        os.close(r)
        await proto.done
        assert tr.is_closing()
        return proto

    proto = loop.run_until_complete(main())
    assert proto.events == ["made", ("lost", None)]


def test_lost_pipe_writes_are_logged(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        tr.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(7):
                tr.write(b"late")
        await proto.done
        os.close(r)

    loop.run_until_complete(main())
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["pipe closed by peer or os.write(pipe, data) raised exception."] * 2


def test_abort_drops_the_buffer(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        tr.write(b"y" * 200_000)
        tr.abort()
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        await proto.done
        assert proto.events == ["made", "pause", ("lost", None)]
        got = 0
        while chunk := os.read(r, 1 << 20):
            got += len(chunk)
        assert 0 < got < 200_000
        os.close(r)

    loop.run_until_complete(main())


def test_close_flushes_buffer_first(loop: Any, fds_checked: None) -> None:
    payload = os.urandom(200_000)

    async def main() -> bytes:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        tr.write(payload)
        tr.close()
        assert tr.is_closing()
        tr.write(b"ignored")
        _rtr, rproto = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        await proto.done
        await rproto.done
        return bytes(rproto.data)

    assert loop.run_until_complete(main()) == payload


def test_write_rejects_str(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        with pytest.raises(AssertionError, match=r"^'text'$"):
            tr.write("text")
        tr.close()
        await proto.done
        os.close(r)

    loop.run_until_complete(main())


def test_regular_file_is_rejected(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        with tempfile.TemporaryFile() as f:
            with pytest.raises(ValueError, match=r"^Pipe transport is for pipes/sockets only\.$"):
                await loop.connect_read_pipe(lambda: Recorder(loop), f)
            with pytest.raises(
                ValueError,
                match=r"^Pipe transport is only for pipes, sockets and character devices$",
            ):
                await loop.connect_write_pipe(lambda: Recorder(loop), f)
            assert not f.closed

    loop.run_until_complete(main())


def test_no_fileno_is_an_attribute_error(loop: Any, is_tidal: bool) -> None:
    async def main() -> None:
        with pytest.raises(AttributeError, match=r"^'object' object has no attribute 'fileno'$"):
            await loop.connect_read_pipe(lambda: Recorder(loop), object())
        with pytest.raises(AttributeError, match=r"^'object' object has no attribute 'fileno'$"):
            await loop.connect_write_pipe(lambda: Recorder(loop), object())

    unraisable: list[Any] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        loop.run_until_complete(main())
        gc.collect()
    finally:
        sys.unraisablehook = hook
    # asyncio's half-built transports then fail in __del__ (their repr wants
    # the fd they never got); tidal's do not.
    if is_tidal:
        assert unraisable == []


def test_socket_and_char_device_are_accepted(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        _tr, proto = await loop.connect_read_pipe(lambda: Recorder(loop), a)
        b.sendall(b"over a socket")
        b.close()
        await proto.done
        assert proto.data == b"over a socket"
        assert a.fileno() == -1

        c, d = socket.socketpair()
        wtr, wproto = await loop.connect_write_pipe(lambda: Recorder(loop), c)
        wtr.write(b"back")
        assert d.recv(10) == b"back"
        d.close()  # the peer closing shows up as connection_lost
        await wproto.done
        assert wproto.events == ["made", ("lost", None)]

        devnull = open(os.devnull, "wb", buffering=0)
        ntr, nproto = await loop.connect_write_pipe(lambda: Recorder(loop), devnull)
        ntr.write(b"z" * 100_000)
        assert ntr.get_write_buffer_size() == 0
        ntr.close()
        await nproto.done
        assert devnull.closed

        # A pty is a character device that can be polled; its master reads
        # EIO once the slave side is closed, which ends the transport quietly.
        master, slave = os.openpty()
        mfile = open(master, "rb", buffering=0)
        _ttr, tproto = await loop.connect_read_pipe(lambda: Recorder(loop), mfile)
        os.write(slave, b"tty line\n")
        while not tproto.data.endswith(b"\n"):
            await asyncio.sleep(0)
        assert tproto.data == b"tty line\r\n"
        os.close(slave)
        await tproto.done
        assert tproto.events == ["made", "data", ("lost", "OSError")]
        assert mfile.closed

    loop.run_until_complete(main())


def _shape(text: str) -> str:
    return re.sub(r"fd=\d+", "fd=N", text)


def test_reprs(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        rtr, rproto = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        wtr, wproto = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        assert _shape(repr(rtr)) == "<_UnixReadPipeTransport fd=N polling>"
        assert _shape(repr(wtr)) == "<_UnixWritePipeTransport fd=N idle bufsize=0>"
        rtr.pause_reading()
        assert _shape(repr(rtr)) == "<_UnixReadPipeTransport fd=N idle>"
        wtr.write(b"q" * 100_000)
        assert re.fullmatch(
            r"<_UnixWritePipeTransport fd=N polling bufsize=\d+>", _shape(repr(wtr))
        )
        wtr.abort()
        assert _shape(repr(wtr)) == "<_UnixWritePipeTransport closing fd=N idle bufsize=0>"
        rtr.close()
        assert _shape(repr(rtr)) == "<_UnixReadPipeTransport closing fd=N idle>"
        await rproto.done
        await wproto.done
        assert _shape(repr(rtr)) == "<_UnixReadPipeTransport closed fd=N closed>"
        assert _shape(repr(wtr)) == "<_UnixWritePipeTransport closed fd=N closed>"

    loop.run_until_complete(main())


def test_protocol_accessors(loop: Any, fds_checked: None) -> None:
    async def main() -> None:
        r, w = os.pipe()
        rtr, rproto = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        assert rtr.get_protocol() is rproto
        other = Recorder(loop)
        rtr.set_protocol(other)
        assert rtr.get_protocol() is other
        os.close(w)
        await other.done
        assert other.events == ["eof", ("lost", None)]

    loop.run_until_complete(main())


def test_flow_control_failures_are_reported(loop: Any, fds_checked: None) -> None:
    errors: list[dict[str, Any]] = []

    class Failing(Recorder):
        def pause_writing(self) -> None:
            raise ZeroDivisionError

        def resume_writing(self) -> None:
            raise KeyError

    async def main() -> None:
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(lambda: Failing(loop), open(w, "wb", 0))
        tr.write(b"p" * 200_000)
        os.set_blocking(r, False)
        while tr.get_write_buffer_size():
            try:
                os.read(r, 1 << 16)
            except BlockingIOError:
                await asyncio.sleep(0)
        tr.close()
        await proto.done
        os.close(r)

    loop.run_until_complete(main())
    assert [e["message"] for e in errors] == [
        "protocol.pause_writing() failed", "protocol.resume_writing() failed",
    ]
    assert isinstance(errors[0]["exception"], ZeroDivisionError)
    assert isinstance(errors[1]["exception"], KeyError)
    assert errors[0]["protocol"].__class__.__name__ == "Failing"


def test_data_received_error_keeps_transport_open(loop: Any, fds_checked: None) -> None:
    errors: list[dict[str, Any]] = []

    class Failing(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            raise ZeroDivisionError

    async def main() -> Recorder:
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        r, w = os.pipe()
        _tr, proto = await loop.connect_read_pipe(lambda: Failing(loop), open(r, "rb", 0))
        os.write(w, b"1")
        while not errors:
            await asyncio.sleep(0)
        os.write(w, b"2")
        os.close(w)
        await proto.done
        return proto

    proto = loop.run_until_complete(main())
    assert proto.data == b"12"
    assert len(errors) == 2
    assert errors[0]["message"].startswith("Exception in callback ")


def test_unclosed_transport_warns(loop: Any, fds_checked: None) -> None:
    import gc

    async def main() -> None:
        r, w = os.pipe()
        tr, _ = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        tr.pause_reading()
        os.close(w)

    loop.run_until_complete(main())
    with pytest.warns(ResourceWarning,
                      match=r"^unclosed transport <_UnixReadPipeTransport fd=\d+ idle>$"):
        gc.collect()


def test_repr_after_loop_close(aio: Any, fds_checked: None) -> None:
    loop = aio.new_event_loop()

    async def main() -> tuple[Any, Any]:
        r, w = os.pipe()
        rtr, _ = await loop.connect_read_pipe(lambda: Recorder(loop), open(r, "rb", 0))
        wtr, _ = await loop.connect_write_pipe(lambda: Recorder(loop), open(w, "wb", 0))
        return rtr, wtr

    rtr, wtr = loop.run_until_complete(main())
    loop.close()
    assert _shape(repr(rtr)) == "<_UnixReadPipeTransport fd=N open>"
    assert _shape(repr(wtr)) == "<_UnixWritePipeTransport fd=N open>"
    for tr in (rtr, wtr):
        tr.get_extra_info("pipe").close()
        tr._pipe = None

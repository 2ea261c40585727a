"""Patching what people patch in their tests, on tidal and on asyncio (the oracle).

Two kinds: setting or ``mock.patch.object``-ing a method on a transport,
protocol or loop *instance* (and the loop's or transport's own code then
calling the patched one where asyncio's does), and patching a method on
asyncio's abstract base classes (``asyncio.BaseTransport.get_extra_info``...),
which reaches exactly the objects that inherit it.  docs/compat.md, "What can
be patched", has the tables these tests check.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from tls_support import Certs

# The shared fixtures: certs, errors, socks.
pytest_plugins = ("tls_fixtures",)

PY311 = sys.version_info < (3, 12)
PY313 = sys.version_info >= (3, 13)
KINDS = ("tcp", "tls", "udp", "rpipe", "wpipe", "subprocess")
# A child that lives until its stdin closes (or it is killed).
CAT = (sys.executable, "-c", "import sys; sys.stdin.buffer.read()")


def run(loop: Any, coro: Any, timeout: float = 10.0) -> Any:
    """Run *coro*; a hang stops the loop (RuntimeError) instead of blocking the suite."""
    guard = loop.call_later(timeout, loop.stop)
    try:
        return loop.run_until_complete(coro)
    finally:
        guard.cancel()


class Proto(asyncio.Protocol):
    """Records data; ``lost`` resolves at connection_lost."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.transport: Any = None
        self.data = bytearray()
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class Dgram(asyncio.DatagramProtocol):
    def __init__(self, loop: Any) -> None:
        self.lost = loop.create_future()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


class SubProto(asyncio.SubprocessProtocol):
    def __init__(self, loop: Any) -> None:
        self.lost = loop.create_future()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


@asynccontextmanager
async def open_transport(loop: Any, kind: str, certs: Certs) -> AsyncIterator[Any]:
    """A live transport of *kind* on *loop*, closed (and its peer too) afterwards."""
    if kind in ("tcp", "tls"):
        tls = kind == "tls"
        served: list[Proto] = []

        def serve() -> Proto:
            served.append(Proto(loop))
            return served[-1]

        server = await loop.create_server(
            serve, "127.0.0.1", 0, ssl=certs.server_context() if tls else None)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(
            lambda: Proto(loop), "127.0.0.1", port,
            ssl=certs.client_context() if tls else None,
            server_hostname="localhost" if tls else None)
        try:
            yield tr
        finally:
            tr.abort()
            await proto.lost
            for peer in served:
                peer.transport.abort()
                await peer.lost
            server.close()
            await server.wait_closed()
    elif kind == "udp":
        tr, proto = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), local_addr=("127.0.0.1", 0))
        try:
            yield tr
        finally:
            tr.close()
            await proto.lost
    elif kind in ("rpipe", "wpipe"):
        r, w = os.pipe()
        rfile, wfile = open(r, "rb", buffering=0), open(w, "wb", buffering=0)
        if kind == "rpipe":
            tr, proto = await loop.connect_read_pipe(lambda: Proto(loop), rfile)
            other = wfile
        else:
            tr, proto = await loop.connect_write_pipe(lambda: Proto(loop), wfile)
            other = rfile
        try:
            yield tr
        finally:
            tr.close()
            await proto.lost
            other.close()
    else:
        tr, proto = await loop.subprocess_exec(
            lambda: SubProto(loop), *CAT, stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield tr
        finally:
            tr.close()
            await proto.lost


# -- instance patching: transports ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_transport_instance_accepts_patch_object_and_assignment(
    loop: Any, certs: Certs, kind: str
) -> None:
    async def main() -> None:
        async with open_transport(loop, kind, certs) as tr:
            with mock.patch.object(tr, "get_extra_info", return_value="patched") as m:
                assert tr.get_extra_info("peername") == "patched"
            m.assert_called_once_with("peername")
            assert "get_extra_info" not in vars(tr)
            assert tr.get_extra_info("no such thing", 5) == 5

            tr.is_closing = lambda: "by assignment"
            assert tr.is_closing() == "by assignment"
            del tr.is_closing
            assert tr.is_closing() is False

            tr.anything = 1  # a new attribute, as on asyncio's
            assert tr.anything == 1

    run(loop, main())


@pytest.mark.parametrize("kind", ["tcp", "tls", "wpipe"])
def test_stream_writer_writes_through_a_patched_transport_write(
    loop: Any, aio: ModuleType, certs: Certs, kind: str
) -> None:
    async def main() -> None:
        async with open_transport(loop, kind, certs) as tr:
            writer = aio.StreamWriter(tr, tr.get_protocol(), None, loop)
            with mock.patch.object(tr, "write") as write:
                writer.write(b"hello")
            write.assert_called_once_with(b"hello")
            tr.writelines = mock.Mock()
            writer.writelines([b"a", b"b"])
            tr.writelines.assert_called_once_with([b"a", b"b"])
            del tr.writelines

    run(loop, main())


@pytest.mark.parametrize("kind", ["tcp", "rpipe"])
def test_stream_reader_pauses_through_patched_pause_reading(
    loop: Any, aio: ModuleType, kind: str
) -> None:
    # What CPython's test_subprocess.test_pause_reading does on a pipe: the
    # reader calls the transport's (patched) pause_reading()/resume_reading().
    async def main() -> tuple[Any, Any]:
        reader = aio.StreamReader(limit=10, loop=loop)
        protocol = aio.StreamReaderProtocol(reader, loop=loop)
        if kind == "tcp":
            a, b = socket.socketpair()
            tr, _ = await loop.create_connection(lambda: protocol, sock=a)
            send: Callable[[bytes], Any] = b.sendall
            finish = b.close
        else:
            r, w = os.pipe()
            tr, _ = await loop.connect_read_pipe(lambda: protocol, open(r, "rb", buffering=0))
            send = lambda data: os.write(w, data)  # noqa: E731
            finish = lambda: os.close(w)  # noqa: E731
        tr.pause_reading = mock.Mock()
        tr.resume_reading = mock.Mock()
        send(b"x" * 25)
        finish()
        assert await reader.read() == b"x" * 25
        tr.close()
        return tr.pause_reading, tr.resume_reading

    pause, resume = run(loop, main())
    assert pause.called
    assert resume.called


@pytest.mark.parametrize("kind", ["tcp", "udp", "rpipe", "tls"])
def test_is_reading_and_pause_reading_ask_the_instance(
    loop: Any, certs: Certs, kind: str
) -> None:
    # asyncio's socket transports compute is_reading() from self.is_closing(),
    # and every pause_reading() but TLS's asks self.is_reading() first.
    async def main() -> None:
        async with open_transport(loop, kind, certs) as tr:
            with mock.patch.object(tr, "is_closing", return_value=True):
                asked_closing = not tr.is_reading()
            assert asked_closing == (kind in ("tcp", "udp"))
            with mock.patch.object(tr, "is_reading", return_value=False):
                tr.pause_reading()
            assert tr.is_reading() == (kind != "tls")
            tr.resume_reading()
            assert tr.is_reading()

    run(loop, main())


@pytest.mark.parametrize("kind", ["tcp", "udp", "tls", "wpipe"])
def test_abort_goes_through_the_instance(loop: Any, certs: Certs, kind: str) -> None:
    # Socket transports abort through self._force_close(None); TLS's only
    # from 3.13; the write pipe through self._close(None).
    name = "_close" if kind == "wpipe" else "_force_close"
    expected = kind != "tls" or PY313

    async def main() -> None:
        async with open_transport(loop, kind, certs) as tr:
            with mock.patch.object(tr, name, wraps=getattr(tr, name)) as m:
                tr.abort()
            assert m.called == expected
            assert tr.is_closing()

    run(loop, main())


def test_write_pipe_close_goes_through_write_eof(loop: Any, certs: Certs) -> None:
    async def main() -> None:
        async with open_transport(loop, "wpipe", certs) as tr:
            with mock.patch.object(tr, "write_eof", wraps=tr.write_eof) as m:
                tr.close()
            m.assert_called_once_with()

    run(loop, main())


def test_read_error_goes_through_the_instance_fatal_error(loop: Any) -> None:
    class Failing(Proto):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError

    async def main() -> None:
        a, b = socket.socketpair()
        tr, proto = await loop.create_connection(lambda: Failing(loop), sock=a)
        loop.set_exception_handler(lambda _loop, _ctx: None)
        with mock.patch.object(tr, "_fatal_error", wraps=tr._fatal_error) as m:
            b.send(b"x")
            await proto.lost
        b.close()
        assert m.call_count == 1
        assert isinstance(m.call_args.args[0], ZeroDivisionError)

    run(loop, main())


def test_subprocess_terminate_goes_through_send_signal_from_313(
    loop: Any, certs: Certs
) -> None:
    async def main() -> None:
        async with open_transport(loop, "subprocess", certs) as tr:
            with mock.patch.object(tr, "send_signal", wraps=tr.send_signal) as m:
                tr.terminate()
            assert m.called == PY313
            with mock.patch.object(tr, "get_pipe_transport", return_value="pipe") as g:
                assert tr.get_pipe_transport(0) == "pipe"
            g.assert_called_once_with(0)

    run(loop, main())


def test_subprocess_pipe_transport_patched_as_in_cpython_test_pause_reading(
    loop: Any, aio: ModuleType
) -> None:
    # CPython's test_subprocess.test_pause_reading, on both loops: the loop's
    # connect_read_pipe() patched on the instance, the pipe's methods too.
    size = 21

    async def main() -> tuple[bytes, Any]:
        connect_read_pipe = loop.connect_read_pipe

        async def patched(*args: Any, **kw: Any) -> Any:
            transport, protocol = await connect_read_pipe(*args, **kw)
            transport.pause_reading = mock.Mock()
            transport.resume_reading = mock.Mock()
            return transport, protocol

        loop.connect_read_pipe = patched
        code = f"import sys; sys.stdout.write('x' * {size}); sys.stdout.flush()"
        proc = await aio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=10)
        stdout_transport = proc._transport.get_pipe_transport(1)
        stdout, _ = await proc.communicate()
        del loop.connect_read_pipe
        return stdout, stdout_transport

    stdout, transport = run(loop, main())
    assert stdout == b"x" * size
    assert transport.pause_reading.called
    assert transport.resume_reading.called


# -- instance patching: stream protocol and writer ---------------------------------


def test_stream_protocol_and_writer_instance_patches(loop: Any, aio: ModuleType) -> None:
    async def main() -> tuple[list[bytes], Any, Any]:
        got: list[bytes] = []
        a, b = socket.socketpair()
        reader, writer = await aio.open_connection(sock=a)
        protocol = writer.transport.get_protocol()
        assert isinstance(protocol, aio.StreamReaderProtocol)
        # The transport looks the protocol's methods up on every event.
        protocol.data_received = got.append
        b.send(b"ping")
        with mock.patch.object(protocol, "eof_received", wraps=protocol.eof_received) as eof:
            b.shutdown(socket.SHUT_WR)
            await reader.read()  # EOF still reaches the reader
        with mock.patch.object(writer, "write") as write:
            writer.write(b"x")
        write.assert_called_once_with(b"x")
        with mock.patch.object(writer, "drain") as drain:
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        b.close()
        return got, eof, drain

    got, eof, drain = run(loop, main())
    assert got == [b"ping"]
    eof.assert_called_once_with()
    drain.assert_called_once_with()


# -- instance patching: the loop ---------------------------------------------------


def test_loop_time_and_call_at_patched_reach_call_later(loop: Any) -> None:
    with mock.patch.object(loop, "time", return_value=1000.0):
        handle = loop.call_later(5, lambda: None)
    assert handle.when() == 1005.0
    handle.cancel()
    with mock.patch.object(loop, "call_at", wraps=loop.call_at) as call_at:
        handle = loop.call_later(5, lambda: None)
    assert call_at.call_count == 1
    handle.cancel()


def test_loop_call_soon_patched_sees_create_task(loop: Any) -> None:
    async def coro() -> int:
        return 1

    with mock.patch.object(loop, "call_soon", wraps=loop.call_soon) as call_soon:
        task = loop.create_task(coro())
    assert call_soon.call_count == 1
    assert loop.run_until_complete(task) == 1


def test_loop_call_soon_patched_sees_future_callbacks(loop: Any) -> None:
    fut = loop.create_future()
    fut.add_done_callback(lambda f: None)
    with mock.patch.object(loop, "call_soon", wraps=loop.call_soon) as call_soon:
        fut.set_result(1)
    assert call_soon.call_count == 1


def test_loop_call_soon_unpatched_is_not_called_again(loop: Any) -> None:
    # After the patch is undone, completing a future calls the original only.
    fut = loop.create_future()
    fut.add_done_callback(lambda f: None)
    with mock.patch.object(loop, "call_soon", wraps=loop.call_soon) as call_soon:
        pass
    fut.set_result(1)
    assert call_soon.call_count == 0
    assert "call_soon" not in vars(loop)
    loop.run_until_complete(fut)


def test_loop_subclass_call_soon_sees_tasks_and_wakeups(loop: Any) -> None:
    # A subclass's own call_soon() schedules what asyncio's loop schedules
    # through it: a task's first step, its wake-up by a future, done-callbacks.
    names: list[str] = []

    class Loop(type(loop)):  # type: ignore[misc]
        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
            names.append("callback" if callback is done else "other")
            return super().call_soon(callback, *args, context=context)

    def done(fut: Any) -> None:
        pass

    sub = Loop()
    try:
        async def main() -> int:
            fut = sub.create_future()
            fut.add_done_callback(done)
            sub.call_later(0.001, fut.set_result, 7)
            return int(await fut)

        assert sub.run_until_complete(main()) == 7
    finally:
        sub.close()
    # the first step, the wake-up, done(), run_until_complete's own callback
    assert sorted(names) == ["callback", "other", "other", "other"]


def test_loop_call_later_patched_sees_sleep(loop: Any, aio: ModuleType) -> None:

    async def main() -> None:
        with mock.patch.object(loop, "call_later", wraps=loop.call_later) as call_later:
            await aio.sleep(0.001)
        assert call_later.call_count == 1

    run(loop, main())


def test_loop_create_task_and_create_future_patched_reach_streams(
    loop: Any, aio: ModuleType
) -> None:
    async def main() -> tuple[int, int]:
        served = loop.create_future()

        async def handle(reader: Any, writer: Any) -> None:
            writer.write(await reader.read(5))
            writer.close()
            served.set_result(None)

        with mock.patch.object(loop, "create_task", wraps=loop.create_task) as create_task:
            server = await aio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await aio.open_connection("127.0.0.1", port)
            writer.write(b"hello")
            await served
        with mock.patch.object(loop, "create_future", wraps=loop.create_future) as create:
            assert await reader.read() == b"hello"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        # The client callback's task; the reader's wait for data.
        return (sum(1 for c in create_task.call_args_list if c.args[0].__name__ == "handle"),
                create.call_count)

    tasks, futures = run(loop, main())
    assert tasks == 1
    assert futures >= 1


def test_loop_getaddrinfo_and_sock_connect_patched_reach_create_connection(loop: Any) -> None:
    async def main() -> tuple[Any, Any]:
        server = await loop.create_server(lambda: Proto(loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        with mock.patch.object(loop, "getaddrinfo", return_value=infos) as gai, \
                mock.patch.object(loop, "sock_connect", wraps=loop.sock_connect) as connect:
            tr, proto = await loop.create_connection(lambda: Proto(loop), "example.invalid", port)
        tr.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        return gai, connect

    gai, connect = run(loop, main())
    assert gai.call_args.args[0] == "example.invalid"
    assert connect.call_count == 1


def test_loop_call_exception_handler_patched_reached_by_a_transport(loop: Any) -> None:
    class Failing(Proto):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError

    async def main() -> Any:
        a, b = socket.socketpair()
        _, proto = await loop.create_connection(lambda: Failing(loop), sock=a)
        with mock.patch.object(loop, "call_exception_handler") as handler:
            b.send(b"x")
            await proto.lost
        b.close()
        return handler

    handler = run(loop, main())
    context = handler.call_args.args[0]
    assert isinstance(context["exception"], ZeroDivisionError)
    assert context["message"] == "Fatal error: protocol.data_received() call failed."


# -- patching asyncio's base classes ---------------------------------------------

# Which transports inherit each public base-class method on asyncio (and so
# on tidal): patching it there reaches exactly these.  The rest override it.
TRANSPORT_BASE_METHODS: dict[tuple[type, str], set[str]] = {
    (asyncio.BaseTransport, "get_extra_info"): {"tcp", "udp", "rpipe", "wpipe", "subprocess"},
    (asyncio.BaseTransport, "is_closing"): set(),
    (asyncio.BaseTransport, "close"): set(),
    (asyncio.BaseTransport, "set_protocol"): set(),
    (asyncio.BaseTransport, "get_protocol"): set(),
    (asyncio.ReadTransport, "is_reading"): {"wpipe"},
    (asyncio.ReadTransport, "pause_reading"): {"wpipe"},
    (asyncio.ReadTransport, "resume_reading"): {"wpipe"},
    (asyncio.WriteTransport, "set_write_buffer_limits"): set(),
    (asyncio.WriteTransport, "get_write_buffer_limits"): set(),
    (asyncio.WriteTransport, "get_write_buffer_size"): set(),
    (asyncio.WriteTransport, "write"): {"udp"},
    (asyncio.WriteTransport, "writelines"): {"udp", "wpipe"} | ({"tcp"} if PY311 else set()),
    (asyncio.WriteTransport, "write_eof"): {"udp"},
    (asyncio.WriteTransport, "can_write_eof"): {"udp"},
    (asyncio.WriteTransport, "abort"): set(),
    (asyncio.DatagramTransport, "sendto"): set(),
    (asyncio.DatagramTransport, "abort"): set(),
    (asyncio.SubprocessTransport, "get_pid"): set(),
    (asyncio.SubprocessTransport, "get_returncode"): set(),
    (asyncio.SubprocessTransport, "get_pipe_transport"): set(),
    (asyncio.SubprocessTransport, "send_signal"): set(),
    (asyncio.SubprocessTransport, "terminate"): set(),
    (asyncio.SubprocessTransport, "kill"): set(),
}


def test_transport_base_class_patches_reach_the_same_transports(
    loop: Any, certs: Certs
) -> None:
    async def main() -> dict[tuple[type, str], set[str]]:
        reached: dict[tuple[type, str], set[str]] = {}
        async with AsyncExitStack() as stack:
            transports = {
                kind: await stack.enter_async_context(open_transport(loop, kind, certs))
                for kind in KINDS
            }
            for base, name in TRANSPORT_BASE_METHODS:
                with mock.patch.object(base, name, autospec=True) as patched:
                    reached[base, name] = {
                        kind for kind, tr in transports.items()
                        if inspect.getattr_static(tr, name, None) is patched
                    }
        return reached

    assert run(loop, main()) == TRANSPORT_BASE_METHODS


@pytest.mark.parametrize("kind", ["tcp", "tls", "udp", "rpipe", "wpipe", "subprocess"])
def test_patched_base_get_extra_info_is_called_iff_inherited(
    loop: Any, certs: Certs, kind: str
) -> None:
    async def main() -> bool:
        async with open_transport(loop, kind, certs) as tr:
            with mock.patch.object(
                asyncio.BaseTransport, "get_extra_info", autospec=True, return_value="base"
            ) as patched:
                value = tr.get_extra_info("peername")
            assert (value == "base") == patched.called
            return bool(patched.called)

    # TLS's own get_extra_info() hands what is not TLS's ('peername') to the
    # socket transport underneath, whose method is the base class's.
    expected = kind in TRANSPORT_BASE_METHODS[asyncio.BaseTransport, "get_extra_info"]
    assert run(loop, main()) == (expected or kind == "tls")


@pytest.mark.parametrize("kind", ["tcp", "tls", "wpipe"])
def test_patched_base_writelines_is_called_iff_inherited(
    loop: Any, certs: Certs, kind: str
) -> None:
    async def main() -> bool:
        async with open_transport(loop, kind, certs) as tr:
            with mock.patch.object(asyncio.WriteTransport, "writelines", autospec=True) as m:
                tr.writelines([b"x"])
            return bool(m.called)

    expected = kind in TRANSPORT_BASE_METHODS[asyncio.WriteTransport, "writelines"]
    assert run(loop, main()) == expected


def test_write_pipe_is_a_transport_whose_reading_methods_are_the_base_ones(
    loop: Any, certs: Certs
) -> None:
    async def main() -> None:
        async with open_transport(loop, "wpipe", certs) as tr:
            assert isinstance(tr, asyncio.Transport)
            assert isinstance(tr, asyncio.ReadTransport)
            for name in ("is_reading", "pause_reading", "resume_reading"):
                with pytest.raises(NotImplementedError):
                    getattr(tr, name)()

    run(loop, main())


PROTOCOL_BASE_METHODS: dict[tuple[type, str], set[str]] = {
    (asyncio.BaseProtocol, "connection_made"): set(),
    (asyncio.BaseProtocol, "connection_lost"): set(),
    (asyncio.BaseProtocol, "pause_writing"): set(),
    (asyncio.BaseProtocol, "resume_writing"): set(),
    (asyncio.Protocol, "data_received"): {"process"},
    (asyncio.Protocol, "eof_received"): {"process", "stdout_pipe"},
    (asyncio.SubprocessProtocol, "pipe_data_received"): set(),
    (asyncio.SubprocessProtocol, "pipe_connection_lost"): set(),
    (asyncio.SubprocessProtocol, "process_exited"): set(),
}


def test_protocol_base_class_patches_reach_the_same_protocols(
    loop: Any, aio: ModuleType
) -> None:
    # The protocols behind streams and subprocesses: StreamReaderProtocol,
    # the Process's SubprocessStreamProtocol and the pipes' own protocols.
    async def main() -> tuple[dict[tuple[type, str], set[str]], Any]:
        a, b = socket.socketpair()
        _, writer = await aio.open_connection(sock=a)
        proc = await aio.create_subprocess_exec(
            *CAT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        protocols = {
            "stream": writer.transport.get_protocol(),
            "process": proc._protocol,
            "stdin_pipe": proc._transport.get_pipe_transport(0).get_protocol(),
            "stdout_pipe": proc._transport.get_pipe_transport(1).get_protocol(),
        }
        reached: dict[tuple[type, str], set[str]] = {}
        for base, name in PROTOCOL_BASE_METHODS:
            with mock.patch.object(base, name, autospec=True) as patched:
                reached[base, name] = {
                    kind for kind, p in protocols.items()
                    if inspect.getattr_static(p, name, None) is patched
                }
        # And in action: the stdout pipe's EOF reaches a patched Protocol.eof_received.
        with mock.patch.object(asyncio.Protocol, "eof_received", autospec=True,
                               return_value=None) as eof:
            await proc.communicate(b"")  # b"": 3.11 closes stdin only with an input
        writer.close()
        await writer.wait_closed()
        b.close()
        return reached, [c.args[0] for c in eof.call_args_list]

    reached, eof_selves = run(loop, main())
    assert reached == PROTOCOL_BASE_METHODS
    assert [type(p).__name__ for p in eof_selves] == ["ReadSubprocessPipeProto"]


def test_transport_socket_is_an_asyncio_transport_socket(loop: Any, aio: ModuleType) -> None:
    async def main() -> tuple[Any, Any]:
        server = await loop.create_server(lambda: Proto(loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        sockets = (server.sockets[0], tr.get_extra_info("socket"))
        tr.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        return sockets

    for sock in run(loop, main()):
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert sock.__class__ is asyncio.trsock.TransportSocket
        assert type(sock).__name__ == "TransportSocket"


def test_more_io_objects_take_instance_attributes(loop: Any, aio: ModuleType) -> None:
    # StreamReader, Server, the TLS protocol and Process are slot-less on asyncio.
    reader = aio.StreamReader(loop=loop)
    reader.marker = 1

    async def main() -> None:
        server = await aio.start_server(lambda r, w: None, "127.0.0.1", 0)
        server.marker = 2
        assert server.marker == 2
        server.close()
        await server.wait_closed()
        proc = await aio.create_subprocess_exec(sys.executable, "-c", "pass")
        proc.marker = 3
        assert await proc.wait() == 0

    run(loop, main())
    assert reader.marker == 1

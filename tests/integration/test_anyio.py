"""anyio's asyncio backend (what httpx runs on) on tidal, and on asyncio, the oracle.

anyio reaches further into the loop and its tasks than most libraries: raw
sockets with ``sock_accept``/``add_reader``, cancel scopes built on
``Task.cancel``/``uncancel`` and the task's ``_fut_waiter``, worker threads
tied to the "root task" it finds by reading ``Task._callbacks``.  Also the
fourth way in: ``anyio.run(..., backend_options={"loop_factory": ...})``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from integ_support import HOST, Runtime, client_ssl, payload, server_ssl

import tidal

anyio = pytest.importorskip("anyio")
from anyio.abc import SocketAttribute  # noqa: E402
from anyio.streams.tls import TLSListener  # noqa: E402


async def upper_echo(stream: Any) -> None:
    async with stream:
        try:
            async for chunk in stream:
                await stream.send(chunk.upper())
        except anyio.BrokenResourceError:
            pass


def test_listeners_and_streams(rt: Runtime, tmp_path: Path) -> None:
    """TCP, TLS and Unix listeners (loop.sock_accept) and their client streams."""

    async def main() -> None:
        tcp = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
        tls = TLSListener(await anyio.create_tcp_listener(local_host=HOST, local_port=0),
                          server_ssl(), standard_compatible=False)
        unix = await anyio.create_unix_listener(tmp_path / "anyio.sock")
        async with tcp, tls, unix, anyio.create_task_group() as tg:
            for listener in (tcp, tls, unix):
                tg.start_soon(listener.serve, upper_echo)
            clients = [
                await anyio.connect_tcp(HOST, tcp.extra(SocketAttribute.local_port)),
                await anyio.connect_tcp(HOST, tls.listener.extra(SocketAttribute.local_port),
                                        ssl_context=client_ssl(),
                                        tls_standard_compatible=False),
                await anyio.connect_unix(tmp_path / "anyio.sock"),
            ]
            for stream in clients:
                async with stream:
                    await stream.send(b"tide")
                    assert await stream.receive() == b"TIDE"
                    data = payload(300_000)
                    await stream.send(data)
                    got = b""
                    while len(got) < len(data):
                        got += await stream.receive()
                    assert got == data.upper()
            tg.cancel_scope.cancel()

    rt.run(main)


def test_cancel_scopes(rt: Runtime) -> None:
    async def main() -> None:
        with anyio.move_on_after(0.03) as scope:
            await anyio.sleep(5)
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.03):
                await anyio.sleep(5)
        # A shielded scope finishes its work inside a cancelled one.
        done = []
        with anyio.move_on_after(0.01):
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.03)
                done.append("shielded")
        assert done == ["shielded"]
        # A failing child cancels its siblings; the group raises both errors in one group.
        cancelled = []

        async def sibling() -> None:
            try:
                await anyio.sleep(5)
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise

        async def fails() -> None:
            await anyio.sleep(0.01)
            raise ValueError("child failed")

        with pytest.raises(ExceptionGroup) as info:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sibling)
                tg.start_soon(fails)
        assert info.group_contains(ValueError)
        assert cancelled == [True]
        # Memory streams under a deadline: nothing sent is lost.
        send, receive = anyio.create_memory_object_stream[int](5)
        got: list[int] = []

        async def consume() -> None:
            async with receive:
                async for item in receive:
                    got.append(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            async with send:
                for i in range(200):
                    await send.send(i)
        assert got == list(range(200))
        # asyncio.timeout() around an anyio wait, and anyio's scope around an asyncio one.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await anyio.sleep(5)
        with anyio.move_on_after(0.02):
            await asyncio.sleep(5)
        rt.check()

    rt.run(main)


def test_worker_threads(rt: Runtime) -> None:
    async def main() -> None:
        assert await anyio.to_thread.run_sync(lambda: threading.get_ident()) != \
            threading.get_ident()

        def calls_back() -> Any:
            return anyio.from_thread.run(asyncio.sleep, 0.001, "from thread")

        assert await anyio.to_thread.run_sync(calls_back) == "from thread"

    rt.run(main)


def test_worker_thread_from_an_awaited_task(rt: Runtime) -> None:
    """anyio.to_thread while another task awaits the caller (Starlette's run_in_threadpool).

    anyio's find_root_task() unpacks every entry of ``task._callbacks`` as a
    (callback, context) pair: tidal's view of that list must give pairs.
    """

    async def child(n: int) -> int:
        return await anyio.to_thread.run_sync(lambda: n * 2)

    async def main() -> None:
        assert await asyncio.create_task(child(21)) == 42
        assert await asyncio.gather(*(child(i) for i in range(5))) == [0, 2, 4, 6, 8]

    rt.run(main)


@pytest.mark.parametrize("on", ["tidal", "asyncio"])
def test_anyio_run_with_loop_factory(on: str) -> None:
    """anyio.run(main, backend_options={"loop_factory": tidal.new_event_loop})."""

    async def main() -> str:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if on == "tidal":
            assert type(loop).__module__.startswith("tidal")
            assert isinstance(task, tidal.Task)
        listener = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, upper_echo)
            async with await anyio.connect_tcp(
                HOST, listener.extra(SocketAttribute.local_port)
            ) as stream:
                await stream.send(b"anyio")
                reply: bytes = await stream.receive()
            tg.cancel_scope.cancel()
        return reply.decode() + str(await anyio.to_thread.run_sync(lambda: 1))

    options = {"loop_factory": tidal.new_event_loop} if on == "tidal" else {}
    try:
        anyio.run(anyio.sleep, 0, backend="asyncio", backend_options=options)
    except TypeError:
        pytest.skip("this anyio has no loop_factory backend option")
    assert anyio.run(main, backend="asyncio", backend_options=options) == "ANYIO1"

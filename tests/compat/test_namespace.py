"""tidal offers asyncio's whole namespace, and its names do for tidal what asyncio's do.

The name check runs on whichever Python runs the suite (3.11, 3.12 and 3.13
have different ``asyncio.__all__``); the behaviour tests run on tidal and on
asyncio (the oracle) through the ``aio`` fixture.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import tidal


def test_every_asyncio_name_is_offered() -> None:
    missing = sorted(name for name in asyncio.__all__ if not hasattr(tidal, name))
    assert missing == []
    assert sorted(set(asyncio.__all__) - set(tidal.__all__)) == []
    assert len(tidal.__all__) == len(set(tidal.__all__))


def test_star_import_gives_every_name() -> None:
    space: dict[str, Any] = {}
    exec("from tidal import *", space)
    assert set(asyncio.__all__) <= set(space)


def test_what_the_names_are() -> None:
    # asyncio's abstract bases, which tidal's transports derive from.
    for name in ("BaseTransport", "ReadTransport", "WriteTransport", "Transport",
                 "DatagramTransport", "SubprocessTransport", "AbstractServer"):
        assert getattr(tidal, name) is getattr(asyncio, name), name
    # tidal's own classes in asyncio's roles.
    from tidal._core.loop import BaseEventLoop
    from tidal._io.server import Server

    assert tidal.BaseEventLoop is BaseEventLoop
    assert issubclass(tidal.SelectorEventLoop, tidal.BaseEventLoop)
    assert tidal.Server is Server
    assert issubclass(tidal.Server, asyncio.AbstractServer)
    assert tidal.DefaultEventLoopPolicy is tidal.EventLoopPolicy


def test_iscoroutinefunction(aio: ModuleType) -> None:
    async def coro() -> None:
        pass

    def plain() -> None:
        pass

    assert aio.iscoroutinefunction(coro)
    assert not aio.iscoroutinefunction(plain)


def test_new_loop_is_a_base_event_loop(aio: ModuleType) -> None:
    loop = aio.new_event_loop()
    try:
        assert isinstance(loop, aio.BaseEventLoop)
        assert isinstance(loop, aio.SelectorEventLoop)
        assert isinstance(loop, aio.AbstractEventLoop)
    finally:
        loop.close()


def test_server_and_transports_are_of_the_exported_classes(aio: ModuleType, loop: Any) -> None:
    async def main() -> dict[str, bool]:
        accepted = loop.create_future()

        class Keep(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                if not accepted.done():
                    accepted.set_result(transport)

        server = await loop.create_server(Keep, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        served = await asyncio.wait_for(accepted, 5)
        udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        r, w = os.pipe()
        read_pipe, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        write_pipe, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
        seen = {
            "server": isinstance(server, aio.Server) and isinstance(server, aio.AbstractServer),
            "client": isinstance(client, aio.Transport),
            "served": isinstance(served, aio.Transport),
            # 3.11's own UDP transport is not a DatagramTransport (fixed in
            # 3.12); tidal's is on every version.
            "udp": isinstance(udp, aio.DatagramTransport)
            or (aio is asyncio and sys.version_info < (3, 12)),
            "read_pipe": isinstance(read_pipe, aio.ReadTransport),
            "write_pipe": isinstance(write_pipe, aio.WriteTransport),
            "base": all(isinstance(t, aio.BaseTransport)
                        for t in (client, served, udp, read_pipe, write_pipe)),
        }
        for transport in (client, served, udp, read_pipe, write_pipe):
            transport.close()
        server.close()
        await server.wait_closed()
        return seen

    seen = loop.run_until_complete(main())
    assert all(seen.values()), seen


def test_subprocess_transport_class(aio: ModuleType, loop: Any) -> None:
    async def main() -> bool:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, sys.executable, "-c", "pass",
            stdin=None, stdout=None, stderr=None,
        )
        try:
            return isinstance(transport, aio.SubprocessTransport)
        finally:
            transport.close()
            await asyncio.sleep(0)

    assert loop.run_until_complete(main())


def test_enter_and_leave_task(aio: ModuleType, loop: Any) -> None:
    done = loop.create_future()

    async def body() -> None:
        pass

    def outside_any_task() -> None:
        task = loop.create_task(body())
        other = loop.create_task(body())
        try:
            assert aio.current_task(loop) is None
            aio._enter_task(loop, task)
            # One registry: asyncio and tidal agree on the current task.
            assert aio.current_task(loop) is task
            assert asyncio.current_task(loop) is task
            assert tidal.current_task(loop) is task
            with pytest.raises(RuntimeError) as err:
                aio._enter_task(loop, other)
            assert str(err.value) == (
                f"Cannot enter into task {other!r} while another task {task!r} "
                "is being executed."
            )
            with pytest.raises(RuntimeError) as err:
                aio._leave_task(loop, other)
            assert str(err.value) == (
                f"Leaving task {other!r} does not match the current task {task!r}."
            )
            aio._leave_task(loop, task)
            assert aio.current_task(loop) is None
            with pytest.raises(RuntimeError) as err:
                aio._leave_task(loop, task)
            assert str(err.value) == (
                f"Leaving task {task!r} does not match the current task None."
            )
            done.set_result(None)
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon(outside_any_task)
    loop.run_until_complete(done)
    # The two tasks still run to completion normally.
    loop.run_until_complete(asyncio.sleep(0))


class CustomTask:
    """What a home-made task needs for all_tasks(): get_loop() and done()."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.finished = False

    def get_loop(self) -> Any:
        return self.loop

    def done(self) -> bool:
        return self.finished


def test_register_and_unregister_task(aio: ModuleType, loop: Any) -> None:
    custom = CustomTask(loop)

    async def main() -> list[bool]:
        seen = [custom in aio.all_tasks()]
        aio._register_task(custom)
        seen += [custom in aio.all_tasks(), custom in asyncio.all_tasks(),
                 custom in tidal.all_tasks()]
        custom.finished = True
        seen.append(custom in aio.all_tasks())
        custom.finished = False
        aio._unregister_task(custom)
        seen.append(custom in aio.all_tasks())
        return seen

    assert loop.run_until_complete(main()) == [False, True, True, True, False, False]


def test_get_and_set_running_loop(aio: ModuleType, loop: Any) -> None:
    assert aio._get_running_loop() is None

    async def main() -> Any:
        return aio._get_running_loop()

    assert loop.run_until_complete(main()) is loop
    marker = aio.new_event_loop()
    try:
        aio._set_running_loop(marker)
        try:
            assert aio._get_running_loop() is marker
            assert aio.get_running_loop() is marker
            assert asyncio.get_running_loop() is marker
            assert tidal.get_running_loop() is marker
        finally:
            aio._set_running_loop(None)
        assert aio._get_running_loop() is None
        with pytest.raises(RuntimeError, match=r"^no running event loop$"):
            aio.get_running_loop()
    finally:
        marker.close()


@pytest.fixture
def fresh_policy() -> Iterator[None]:
    """asyncio's default policy, new, with no loop set; the old one restored after."""
    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(None)
    try:
        yield
    finally:
        current = asyncio.get_event_loop_policy()._local._loop  # type: ignore[attr-defined]
        if current is not None:
            current.close()
        asyncio.set_event_loop_policy(old)


def test_default_policy_makes_the_modules_loops(aio: ModuleType, fresh_policy: None) -> None:
    policy = aio.get_event_loop_policy()
    assert isinstance(policy, aio.DefaultEventLoopPolicy)
    assert isinstance(policy, aio.AbstractEventLoopPolicy)
    assert aio.get_event_loop_policy() is policy
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, aio.SelectorEventLoop)
    finally:
        loop.close()


def test_policy_shares_the_current_loop(aio: ModuleType, fresh_policy: None) -> None:
    loop = aio.new_event_loop()
    try:
        aio.get_event_loop_policy().set_event_loop(loop)
        assert aio.get_event_loop() is loop
        assert asyncio.get_event_loop() is loop
        assert tidal.get_event_loop() is loop
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
        aio.set_event_loop(None)
        with pytest.raises(
            RuntimeError,
            match=r"^There is no current event loop in thread 'MainThread'\.$",
        ):
            aio.get_event_loop_policy().get_event_loop()
    finally:
        loop.close()


def test_set_event_loop_policy(aio: ModuleType, fresh_policy: None) -> None:
    class Policy(aio.DefaultEventLoopPolicy):  # type: ignore[name-defined,misc]
        pass

    custom = Policy()
    aio.set_event_loop_policy(custom)
    assert aio.get_event_loop_policy() is custom
    assert asyncio.get_event_loop_policy() is custom
    assert tidal.get_event_loop_policy() is custom
    with pytest.raises(TypeError) as err:
        aio.set_event_loop_policy(object())
    assert str(err.value) == (
        "policy must be an instance of AbstractEventLoopPolicy or None, not 'object'"
    )
    aio.set_event_loop_policy(None)
    assert isinstance(aio.get_event_loop_policy(), aio.DefaultEventLoopPolicy)
    assert aio.get_event_loop_policy() is not custom


def test_child_watcher_names(aio: ModuleType, fresh_policy: None) -> None:
    for name in ("AbstractChildWatcher", "SafeChildWatcher", "FastChildWatcher",
                 "MultiLoopChildWatcher", "ThreadedChildWatcher", "PidfdChildWatcher"):
        assert getattr(aio, name) is getattr(asyncio, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = aio.ThreadedChildWatcher()
    if sys.version_info >= (3, 12):
        with pytest.warns(
            DeprecationWarning,
            match=r"^'set_child_watcher' is deprecated as of Python 3\.12 and will be removed in "
                  r"Python 3\.14\.$",
        ):
            aio.set_child_watcher(watcher)
        with pytest.warns(
            DeprecationWarning,
            match=r"^'get_child_watcher' is deprecated as of Python 3\.12 and will be removed in "
                  r"Python 3\.14\.$",
        ):
            assert aio.get_child_watcher() is watcher
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            aio.set_child_watcher(watcher)
            assert aio.get_child_watcher() is watcher
    with pytest.raises(AssertionError):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            aio.set_child_watcher(object())


"""Unix domain stream sockets: echo, socket-file cleanup, argument checks."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import sys
from types import ModuleType
from typing import Any

import pytest


def test_unix_echo_and_cleanup(aio: ModuleType, loop: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "s.sock")

    async def main() -> tuple[bytes, bool]:
        async def handle(reader: Any, writer: Any) -> None:
            writer.write(await reader.readline())
            writer.close()

        srv = await aio.start_unix_server(handle, path)
        assert os.path.exists(path)
        reader, writer = await aio.open_unix_connection(path)
        writer.write(b"over unix\n")
        data: bytes = await reader.read()
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return data, os.path.exists(path)

    data, exists = loop.run_until_complete(main())
    assert data == b"over unix\n"
    # 3.13 unlinks the socket file on close; earlier versions leave it.
    assert exists == (sys.version_info < (3, 13))


def test_stale_socket_file_is_replaced(loop: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()

    async def main() -> str:
        with pytest.raises(ConnectionRefusedError):  # nobody listens on the stale file
            await loop.create_unix_connection(asyncio.Protocol, path)
        srv = await loop.create_unix_server(asyncio.Protocol, path)
        # The server listens on a new socket file at the same path.
        tr, _ = await loop.create_unix_connection(asyncio.Protocol, path)
        name = srv.sockets[0].getsockname()
        tr.close()
        await asyncio.sleep(0)
        srv.close()
        await srv.wait_closed()
        return str(name)

    assert loop.run_until_complete(main()) == path


@pytest.mark.skipif(sys.version_info < (3, 13), reason="cleanup_socket is new in 3.13")
def test_cleanup_socket_false_keeps_file(loop: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "keep.sock")

    async def main() -> None:
        srv = await loop.create_unix_server(asyncio.Protocol, path, cleanup_socket=False)
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())
    assert os.path.exists(path)


def test_address_in_use(loop: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "busy")
    with open(path, "w"):
        pass  # a regular file is not removed
    with pytest.raises(OSError, match="^" + re.escape(
            f"[Errno {errno.EADDRINUSE}] Address '{path}' is already in use") + "$"):
        loop.run_until_complete(loop.create_unix_server(asyncio.Protocol, path))


def test_unix_argument_errors(loop: Any) -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (loop.create_unix_connection, {"path": "p", "ssl": True},
         "you have to pass server_hostname when using ssl"),
        (loop.create_unix_connection, {"path": "p", "server_hostname": "x"},
         "server_hostname is only meaningful with ssl"),
        (loop.create_unix_connection, {}, "no path and sock were specified"),
        (loop.create_unix_server, {}, "path was not specified, and no sock specified"),
    ]
    for func, kwargs, msg in cases:
        with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
            loop.run_until_complete(func(asyncio.Protocol, **kwargs))
    tcp = socket.socket()
    with tcp:
        with pytest.raises(ValueError) as err:
            loop.run_until_complete(loop.create_unix_connection(asyncio.Protocol, sock=tcp))
        assert str(err.value) == f"A UNIX Domain Stream Socket was expected, got {tcp!r}"


def test_unix_connection_refused(loop: Any, tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError):
        loop.run_until_complete(
            loop.create_unix_connection(asyncio.Protocol, str(tmp_path / "none")))


@pytest.mark.parametrize("writer", [False, True], ids=["reader", "writer"])
def test_remove_after_close_finds_the_socket(loop: Any, writer: bool) -> None:
    """A socket closed while watched (fileno() == -1) is found by the object.

    anyio's Unix streams close the socket, then remove its reader or writer.
    """
    add = loop.add_writer if writer else loop.add_reader
    remove = loop.remove_writer if writer else loop.remove_reader
    a, b = socket.socketpair(socket.AF_UNIX)
    with b:
        add(a, lambda: None)
        a.close()
        assert remove(a) is True
        # Gone now: the object no longer names a registration.
        with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
            remove(a)
        c, d = socket.socketpair(socket.AF_UNIX)
        c.close()
        with d, pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
            remove(c)  # never registered


def test_closed_socket_watched_both_ways(loop: Any) -> None:
    """The poller refuses to change a closed fd: the error is raised and the fd forgotten."""
    a, b = socket.socketpair(socket.AF_UNIX)
    with b:
        loop.add_reader(a, lambda: None)
        loop.add_writer(a, lambda: None)
        a.close()
        with pytest.raises(OSError):
            loop.remove_writer(a)
        with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
            loop.remove_reader(a)
        # A new socket given the same fd number starts afresh.
        c, d = socket.socketpair(socket.AF_UNIX)
        with c, d:
            loop.add_reader(c, lambda: None)
            assert loop.remove_writer(c) is False
            assert loop.remove_reader(c) is True

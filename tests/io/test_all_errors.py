"""create_connection(all_errors=...): new in 3.12, a TypeError on 3.11; on tidal and asyncio."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import sys
from types import ModuleType
from typing import Any

import pytest

PY312 = sys.version_info >= (3, 12)
# The class in the message is the implementation's (BaseEventLoop in asyncio).
UNEXPECTED = r"^\w+\.create_connection\(\) got an unexpected keyword argument 'all_errors'$"


def refused_address() -> tuple[str, int]:
    """A local port nobody listens on (bound, never listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host, port = s.getsockname()
        return host, port


@pytest.mark.skipif(PY312, reason="3.11 only")
@pytest.mark.parametrize("value", [True, False])
def test_all_errors_is_a_type_error_on_311(aio: ModuleType, loop: Any, value: bool) -> None:
    # Raised by the call itself, before any coroutine exists.
    with pytest.raises(TypeError, match=UNEXPECTED):
        loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, all_errors=value)
    assert asyncio.iscoroutinefunction(loop.create_connection)

    async def main() -> None:
        await aio.open_connection("127.0.0.1", 1, all_errors=value)

    with pytest.raises(TypeError, match=UNEXPECTED):
        loop.run_until_complete(main())


@pytest.mark.skipif(not PY312, reason="all_errors is new in 3.12")
def test_all_errors_raises_the_group(aio: ModuleType, loop: Any) -> None:
    host, port = refused_address()

    async def main() -> BaseException:
        try:
            await loop.create_connection(asyncio.Protocol, host, port, all_errors=True)
        except BaseException as exc:
            return exc
        raise AssertionError("connected")

    exc = loop.run_until_complete(main())
    assert isinstance(exc, ExceptionGroup)
    assert str(exc) == "create_connection failed (1 sub-exception)"
    (only,) = exc.exceptions
    assert isinstance(only, ConnectionRefusedError)
    assert str(only) == f"[Errno {errno.ECONNREFUSED}] Connect call failed ('{host}', {port})"


@pytest.mark.skipif(not PY312, reason="all_errors is new in 3.12")
def test_all_errors_false_raises_the_error(loop: Any) -> None:
    host, port = refused_address()
    coro = loop.create_connection(asyncio.Protocol, host, port, all_errors=False)
    message = f"[Errno {errno.ECONNREFUSED}] Connect call failed ('{host}', {port})"
    with pytest.raises(ConnectionRefusedError, match="^" + re.escape(message) + "$"):
        loop.run_until_complete(coro)

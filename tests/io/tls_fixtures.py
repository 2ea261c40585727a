"""Fixtures shared by the TLS test modules, which load this file with ``pytest_plugins``.

A plugin module of its own, so that pytest imports (and assert-rewrites) it
first; the helpers stay in ``tls_support``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tls_support import Certs, shipped_certs


@pytest.fixture(scope="session")
def certs() -> Certs:
    """The shipped test certificates."""
    return shipped_certs()


@pytest.fixture
def errors(loop: Any) -> list[dict[str, Any]]:
    """Contexts passed to the loop's exception handler."""
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    return seen


@pytest.fixture
def socks() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected socketpair, closed afterwards."""
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()

"""Datagram endpoints: UDP echo, connected endpoints, errors, argument checks."""

from __future__ import annotations

import asyncio
import socket
import sys
from types import ModuleType
from typing import Any

import pytest


class Dgram(asyncio.DatagramProtocol):
    def __init__(self, loop: Any, echo: bool = False) -> None:
        self.echo = echo
        self.received: list[tuple[bytes, Any]] = []
        self.errors: list[BaseException] = []
        self.waiter: Any = None
        self.loop = loop
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))
        if self.echo:
            self.transport.sendto(data.upper(), addr)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)

    async def wait(self) -> None:
        self.waiter = self.loop.create_future()
        await self.waiter


def test_udp_echo(loop: Any) -> None:
    async def main() -> tuple[Any, ...]:
        st, sp = await loop.create_datagram_endpoint(
            lambda: Dgram(loop, echo=True), local_addr=("127.0.0.1", 0))
        addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(lambda: Dgram(loop), remote_addr=addr)
        assert ct.get_extra_info("peername") == addr
        ct.sendto(b"hello")
        await cp.wait()
        with pytest.raises(ValueError) as err:
            ct.sendto(b"x", ("127.0.0.1", 1))
        assert str(err.value) == f"Invalid address: must be None or {addr}"
        with pytest.raises(
            TypeError,
            match=r"^data argument must be a bytes-like object, not 'str'$",
        ):
            ct.sendto("text")
        assert ct.get_write_buffer_size() == 0
        ct.close()
        st.close()
        return cp.received[0][0], await cp.lost, await sp.lost, ct.is_closing()

    assert loop.run_until_complete(main()) == (b"HELLO", None, None, True)


def test_udp_error_received(loop: Any) -> None:
    async def main() -> type:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        addr = probe.getsockname()
        probe.close()
        ct, cp = await loop.create_datagram_endpoint(lambda: Dgram(loop), remote_addr=addr)
        ct.sendto(b"nobody home")
        await cp.wait()  # ICMP port unreachable comes back as an error
        ct.close()
        return type(cp.errors[0])

    assert loop.run_until_complete(main()) is ConnectionRefusedError


def test_udp_unconnected_sendto(loop: Any) -> None:
    async def main() -> tuple[bytes, bool]:
        st, sp = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), local_addr=("127.0.0.1", 0), reuse_port=True)
        ct, _cp = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), family=socket.AF_INET, allow_broadcast=True)
        sock = ct.get_extra_info("socket")
        broadcast = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST))
        ct.sendto(b"one", st.get_extra_info("sockname"))
        await sp.wait()
        ct.abort()
        st.close()
        return sp.received[0][0], broadcast

    assert loop.run_until_complete(main()) == (b"one", True)


def test_datagram_argument_errors(loop: Any) -> None:
    with pytest.raises(ValueError, match=r"^unexpected address family$"):
        loop.run_until_complete(loop.create_datagram_endpoint(asyncio.DatagramProtocol))
    with pytest.raises(TypeError, match=r"^2-tuple is expected$"):
        loop.run_until_complete(loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr="x"))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with u:
        with pytest.raises(
            ValueError,
            match=r"^socket modifier keyword arguments can not be used when sock is specified\. "
                  r"\(family=2\)$",
        ):
            loop.run_until_complete(loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, sock=u, family=socket.AF_INET))
    t = socket.socket()
    with t:
        msg = "A datagram socket was expected" if sys.version_info >= (3, 13) else \
            "A UDP Socket was expected"
        with pytest.raises(ValueError) as err:
            loop.run_until_complete(loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, sock=t))
        assert str(err.value) == f"{msg}, got {t!r}"


def test_unix_datagram(loop: Any, tmp_path: Any) -> None:
    async def main() -> bytes:
        path = str(tmp_path / "d.sock")
        st, sp = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), local_addr=path, family=socket.AF_UNIX)
        ct, _cp = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), remote_addr=path, family=socket.AF_UNIX)
        ct.sendto(b"unix")
        await sp.wait()
        ct.close()
        st.close()
        return sp.received[0][0]  # type: ignore[no-any-return]

    assert loop.run_until_complete(main()) == b"unix"


def test_given_socket(aio: ModuleType, loop: Any) -> None:
    async def main() -> bytes:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        st, sp = await loop.create_datagram_endpoint(lambda: Dgram(loop), sock=sock)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with other:
            other.sendto(b"raw", sock.getsockname())
            await sp.wait()
        st.close()
        await sp.lost
        return sp.received[0][0]  # type: ignore[no-any-return]

    assert loop.run_until_complete(main()) == b"raw"


def test_largest_datagrams_arrive_whole(loop: Any, tmp_path: Any) -> None:
    async def main() -> tuple[int, int]:
        st, sp = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), local_addr=("127.0.0.1", 0))
        ct, _ = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), remote_addr=st.get_extra_info("sockname"))
        ct.sendto(b"u" * 65507)  # the largest UDP/IPv4 payload
        await sp.wait()
        path = str(tmp_path / "big.sock")
        ut, up = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), local_addr=path, family=socket.AF_UNIX)
        uc, _ = await loop.create_datagram_endpoint(
            lambda: Dgram(loop), remote_addr=path, family=socket.AF_UNIX)
        uc.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        uc.sendto(b"x" * 150_000)  # Unix datagrams may exceed 64 KiB
        await up.wait()
        for t in (st, ct, ut, uc):
            t.close()
        return len(sp.received[0][0]), len(up.received[0][0])

    assert loop.run_until_complete(main()) == (65507, 150_000)

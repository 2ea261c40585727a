"""Test helpers for the TLS layer: certificates, a plain socket transport, wiring.

The transport here is a small selector-style stream transport built only on
``loop.add_reader``/``add_writer``, so it runs unchanged on tidal's loop and on
asyncio's.  Wiring tidal's ``SSLProtocol`` over it on tidal, and asyncio's
``sslproto.SSLProtocol`` over it on asyncio, makes asyncio the oracle for the
TLS protocol alone, independently of create_connection()/create_server().
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import tidal
from tidal._io.tls import SSLProtocol

# -- certificates ---------------------------------------------------------------


@dataclass
class Certs:
    """Paths of a throwaway CA, a server certificate it signed, and a stranger CA."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the 'localhost' certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting our CA, checking the host name."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca)
        return ctx

    def post_handshake_auth_contexts(self) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        """(client, server) contexts for TLS 1.3 post-handshake client authentication."""
        client = self.client_context()
        client.load_cert_chain(self.cert, self.key)
        client.post_handshake_auth = True
        server = self.server_context()
        server.load_verify_locations(self.ca)
        server.verify_mode = ssl.CERT_OPTIONAL
        server.post_handshake_auth = True  # ask later, not during the handshake
        return client, server

    def untrusting_context(self) -> ssl.SSLContext:
        """A client context trusting only a CA that did not sign the server's cert."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.other_ca)
        return ctx


CERTS_DIR = Path(__file__).parent / "certs"


def shipped_certs() -> Certs:
    """The certificates under ``tests/io/certs`` (made by ``make_certs``, valid 100 years)."""
    d = CERTS_DIR
    return Certs(d / "ca.pem", d / "cert.pem", d / "key.pem", d / "other_ca.pem")


def make_certs(directory: Path) -> Certs:
    """Write a CA, a server cert for localhost/127.0.0.1 and a second CA (EC keys).

    Needs the ``cryptography`` package; run ``python tests/io/tls_support.py``
    to remake the shipped set.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    # Fixed dates: the shipped set must be valid whatever the machine's clock says.
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(2120, 1, 1, tzinfo=datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def make_ca(cn: str) -> tuple[Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn)).issuer_name(name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = make_ca("tidal test CA")
    _, other_cert = make_ca("tidal stranger CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # Client auth too: the tests also present it as a client certificate.
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                   x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    certs = Certs(directory / "ca.pem", directory / "cert.pem", directory / "key.pem",
                  directory / "other_ca.pem")
    certs.ca.write_bytes(ca_cert.public_bytes(pem))
    certs.other_ca.write_bytes(other_cert.public_bytes(pem))
    certs.cert.write_bytes(cert.public_bytes(pem))
    certs.key.write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return certs


# -- a plain stream transport over a socket -----------------------------------------


class SockTransport(asyncio.Transport):
    """A minimal non-blocking socket transport, enough to carry TLS in tests."""

    _start_tls_compatible = True

    def __init__(self, loop: Any, sock: socket.socket, protocol: Any, *,
                 use_get_buffer: bool = True) -> None:
        super().__init__({"socket": sock, "sockname": sock.getsockname(),
                          "peername": sock.getpeername()})
        self._loop = loop
        self._sock = sock
        sock.setblocking(False)
        self._protocol = protocol
        self._buffer = bytearray()
        self._closing = False
        self._lost = False
        self._reading = True
        self._eof_pending = False
        self._protocol_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024
        # False: always hand data_received() a bytes object, as a plain transport would.
        self._use_get_buffer = use_get_buffer
        self.writes = 0  # lower write() calls, for batching checks
        self.pause_count = 0
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)

    def _start_reading(self) -> None:
        if self._reading and not self._closing:
            self._loop.add_reader(self._sock, self._read_ready)

    def _read_ready(self) -> None:
        proto = self._protocol
        try:
            if self._use_get_buffer and isinstance(proto, asyncio.BufferedProtocol):
                buf = proto.get_buffer(-1)
                n = self._sock.recv_into(buf)
                if n:
                    proto.buffer_updated(n)
                    return
            else:
                data = self._sock.recv(256 * 1024)
                if data:
                    proto.data_received(data)
                    return
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        self._loop.remove_reader(self._sock)
        if not proto.eof_received():
            self.close()

    def write(self, data: Any) -> None:
        if self._closing or self._lost:
            return
        self.writes += 1
        if not self._buffer:
            try:
                n = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._force_close(exc)
                return
            data = memoryview(data)[n:]
            if not data:
                return
            self._loop.add_writer(self._sock, self._write_ready)
        self._buffer += data
        if len(self._buffer) > self._high and not self._protocol_paused:
            self._protocol_paused = True
            self.pause_count += 1
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            n = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del self._buffer[:n]
        if self._protocol_paused and len(self._buffer) <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()
        if not self._buffer:
            self._loop.remove_writer(self._sock)
            if self._closing:
                self._loop.call_soon(self._call_connection_lost, None)
            elif self._eof_pending:
                self._sock.shutdown(socket.SHUT_WR)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._buffer:
            self._eof_pending = True
        else:
            self._sock.shutdown(socket.SHUT_WR)

    def pause_reading(self) -> None:
        self._reading = False
        if not self._lost:
            self._loop.remove_reader(self._sock)

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if not self._closing and not self._lost:
                self._loop.add_reader(self._sock, self._read_ready)

    def is_reading(self) -> bool:
        return self._reading

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._sock)
        if not self._buffer:
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._sock)
        if not self._closing:
            self._closing = True
            self._loop.remove_reader(self._sock)
        self._loop.call_soon(self._call_connection_lost, exc)
        self._lost = True

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._loop.remove_reader(self._sock)
            self._loop.remove_writer(self._sock)
            self._sock.close()


# -- wiring ----------------------------------------------------------------------


def ssl_protocol_class(aio: ModuleType) -> Any:
    """tidal's SSLProtocol under tidal, asyncio's under asyncio (the oracle)."""
    return SSLProtocol if aio is tidal else asyncio.sslproto.SSLProtocol


def wrap(aio: ModuleType, loop: Any, sock: socket.socket, app: Any, ctx: ssl.SSLContext | None,
         *, server_side: bool = False, server_hostname: str | None = None,
         **kw: Any) -> tuple[Any, Any, SockTransport]:
    """Run TLS over *sock* for *app*; return (waiter, ssl protocol, raw transport)."""
    waiter = loop.create_future()
    proto = ssl_protocol_class(aio)(loop, app, ctx, waiter, server_side, server_hostname, **kw)
    raw = SockTransport(loop, sock, proto)
    return waiter, proto, raw


async def start_tls(aio: ModuleType, loop: Any, transport: Any, app: Any, ctx: ssl.SSLContext,
                    *, server_side: bool = False, server_hostname: str | None = None,
                    **kw: Any) -> Any:
    """loop.start_tls() as asyncio does it, with the SSLProtocol of *aio*."""
    waiter = loop.create_future()
    proto = ssl_protocol_class(aio)(loop, app, ctx, waiter, server_side, server_hostname,
                                    call_connection_made=False, **kw)
    transport.pause_reading()
    transport.set_protocol(proto)
    made = loop.call_soon(proto.connection_made, transport)
    resume = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resume.cancel()
        raise
    return proto._app_transport


class Pair:
    """A TLS client and server over a socketpair, both on the loop under test."""

    def __init__(self, aio: ModuleType, loop: Any, certs: Certs,
                 socks: tuple[socket.socket, socket.socket], *,
                 client_app: Any = None, server_app: Any = None,
                 client_ctx: ssl.SSLContext | None = None,
                 server_ctx: ssl.SSLContext | None = None,
                 server_hostname: str | None = "localhost", **kw: Any) -> None:
        self.loop = loop
        self.client = client_app if client_app is not None else Recorder(loop)
        self.server = server_app if server_app is not None else Recorder(loop)
        cctx = client_ctx if client_ctx is not None else certs.client_context()
        sctx = server_ctx if server_ctx is not None else certs.server_context()
        self.cwaiter, self.cproto, self.craw = wrap(
            aio, loop, socks[0], self.client, cctx, server_hostname=server_hostname, **kw)
        self.swaiter, self.sproto, self.sraw = wrap(
            aio, loop, socks[1], self.server, sctx, server_side=True, **kw)

    async def handshake(self) -> None:
        await self.cwaiter
        await self.swaiter

    async def close_both(self) -> None:
        """Close the client side; wait until both ends lost their connection."""
        self.client.transport.close()
        await self.client.lost
        await self.server.lost


def run(loop: Any, coro: Any, timeout: float = 5.0) -> Any:
    """Run *coro*; a hang stops the loop (RuntimeError) instead of blocking the suite."""
    guard = loop.call_later(timeout, loop.stop)
    try:
        return loop.run_until_complete(coro)
    finally:
        guard.cancel()


class Recorder(asyncio.Protocol):
    """An application protocol that records every event and collects data."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: Any = None
        self.lost: Any = loop.create_future()
        self.eof: Any = loop.create_future()
        self.exc: BaseException | None = None
        self._want = 0
        self._got: Any = None
        self.chunks: list[int] = []  # size of each delivery
        self.log: list[str] | None = None  # a log shared with other recorders
        self.name = ""

    def connection_made(self, transport: Any) -> None:
        self._note("made")
        self.transport = transport

    def _note(self, event: str) -> None:
        self.events.append(event)
        if self.log is not None:
            self.log.append(f"{self.name}:{event}")

    def data_received(self, data: bytes) -> None:
        if not self.events or self.events[-1] != "data":
            self._note("data")
        assert isinstance(data, bytes)
        self.chunks.append(len(data))
        self.data += data
        if self._got is not None and len(self.data) >= self._want:
            self._got.set_result(None)
            self._got = None

    async def received(self, total: int) -> None:
        """Wait until *total* bytes in all were received."""
        if len(self.data) < total:
            self._want = total
            self._got = self.loop.create_future()
            await self._got

    def eof_received(self) -> None:
        self._note("eof")
        if not self.eof.done():
            self.eof.set_result(None)

    def pause_writing(self) -> None:
        self._note("pause")

    def resume_writing(self) -> None:
        self._note("resume")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._note("lost")
        self.exc = exc
        self.lost.set_result(exc)


class BufRecorder(Recorder, asyncio.BufferedProtocol):
    """Recorder taking data through get_buffer()/buffer_updated()."""

    def __init__(self, loop: Any, size: int = 1000) -> None:
        Recorder.__init__(self, loop)
        self.buf = bytearray(size)
        self.hints: list[int] = []

    def get_buffer(self, sizehint: int) -> memoryview:
        self.hints.append(sizehint)
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buf[:nbytes]))


if __name__ == "__main__":
    CERTS_DIR.mkdir(exist_ok=True)
    make_certs(CERTS_DIR)

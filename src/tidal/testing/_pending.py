"""Which registered fds may still bring something the loop did not cause itself.

The virtual clock must not jump past real I/O that is on its way. The loop
cannot know what a remote peer will do, but it can tell when the other end of
a socket is one of its own sockets: then whatever arrives comes from code the
loop runs, and once a poll finds nothing ready, nothing is in flight.

Each registered fd is one of:

* a listening socket, or an unconnected datagram socket: a server waiting for
  whoever may come; it does not hold the clock (a client started from a
  thread-pool call or a subprocess holds it through that call);
* a connected socket whose peer address is a local address of another socket
  registered on this loop (both ends of a TCP or named Unix connection made
  inside the test): it does not hold the clock;
* anything else (a socket to another process or thread, an unnamed Unix
  socket pair, a pipe, a subprocess's pidfd, a stream socket still
  connecting): it holds the clock.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

__all__ = ("fds_hold_time",)

_LISTEN = 0
_DGRAM = 1
_CONNECTED = 2
_OTHER = 3  # holds the clock

#: fd -> (the loop's entry object for it, kind, local name, peer name). An
#: entry is replaced whenever the fd is unregistered, so a stale one is seen.
_Info = tuple[Any, int, Any, Any]


def _describe(fd: int) -> tuple[int, Any, Any, bool]:
    """(kind, local name, peer name, may be cached) for *fd*."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return _OTHER, None, None, True  # not a socket: a pipe, a pidfd...
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return _LISTEN, _name(sock.family, sock.getsockname()), None, True
        local = _name(sock.family, sock.getsockname())
        try:
            peer = _name(sock.family, sock.getpeername())
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                return _OTHER, None, None, False
            if sock.type == socket.SOCK_DGRAM:
                return _DGRAM, local, None, True
            # A stream socket still connecting: its answer is on the way.
            return _OTHER, None, None, False
        return _CONNECTED, local, peer, True
    except OSError:
        return _OTHER, None, None, False
    finally:
        sock.detach()


def _name(family: int, addr: Any) -> Any:
    # Unnamed Unix sockets have '' or b'' as their name: match nothing.
    if family == socket.AF_UNIX and not addr:
        return None
    if family in (socket.AF_INET, socket.AF_INET6):
        return (family, addr[0], addr[1])
    return (family, addr)


def fds_hold_time(loop: Any, cache: dict[int, _Info]) -> bool:
    """True if some fd registered on *loop* may receive what the loop did not send."""
    fds: dict[int, Any] = loop._fds
    skip = getattr(loop, "_signal_rfd", -1)
    infos = []
    for fd, entry in fds.items():
        if fd == skip:
            continue  # signal handlers wait for whatever comes, like a server
        info = cache.get(fd)
        if info is None or info[0] is not entry:
            kind, local, peer, cacheable = _describe(fd)
            info = (entry, kind, local, peer)
            if cacheable:
                cache[fd] = info
            else:
                cache.pop(fd, None)
        if info[1] == _OTHER:
            return True
        infos.append(info)
    if len(cache) > 2 * len(fds) + 16:
        for fd in [fd for fd in cache if fd not in fds]:
            del cache[fd]
    locals_ = {info[2] for info in infos if info[2] is not None}
    peers = {info[3] for info in infos if info[3] is not None}
    for _entry, kind, local, peer in infos:
        if kind != _CONNECTED:
            continue
        if peer is not None:
            if peer not in locals_:
                return True
        elif local is None or local not in peers:
            # An accepted Unix socket (unnamed client): its own name must be
            # what one of this loop's clients is connected to.
            return True
    return False

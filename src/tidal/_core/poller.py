"""The I/O poller: epoll on Linux, the best ``selectors`` choice elsewhere.

The loop speaks to one small interface: ``register``/``modify``/``unregister``
an fd with a mask built from ``IN``/``OUT``, and ``poll(timeout)`` returning
``(fd, events)`` pairs.  ``events & readable`` / ``events & writable`` tell
which side is ready; on epoll an error or hang-up makes both sides ready, as
asyncio's selector does, so the callback that tries the syscall sees the error.
"""

from __future__ import annotations

import select
import selectors
from typing import Any


class EpollPoller:
    """Level-triggered epoll, with no per-event objects."""

    IN: int = select.EPOLLIN
    OUT: int = select.EPOLLOUT
    # Anything but a bare EPOLLOUT wakes the reader; anything but a bare
    # EPOLLIN wakes the writer (errors and hang-ups wake both).
    readable: int = ~select.EPOLLOUT
    writable: int = ~select.EPOLLIN

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._poll = self._epoll.poll

    def fileno(self) -> int:
        """The epoll fd itself."""
        return self._epoll.fileno()

    def register(self, fd: int, mask: int) -> None:
        """Start watching *fd* for *mask*."""
        self._epoll.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        """Watch *fd* for a different *mask*."""
        self._epoll.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        """Stop watching *fd* (it may already be closed)."""
        try:
            self._epoll.unregister(fd)
        except OSError:
            pass

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to *timeout* seconds (None: forever) for ready fds."""
        return self._poll(-1 if timeout is None else timeout)

    def close(self) -> None:
        """Release the epoll fd."""
        self._epoll.close()


class SelectorPoller:
    """The same interface over ``selectors.DefaultSelector`` (kqueue, poll...)."""

    IN: int = selectors.EVENT_READ
    OUT: int = selectors.EVENT_WRITE
    readable: int = selectors.EVENT_READ
    writable: int = selectors.EVENT_WRITE

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector: selectors.BaseSelector = (
            selectors.DefaultSelector() if selector is None else selector
        )

    def fileno(self) -> int:
        """The selector's fd, or -1 where it has none."""
        fileno: Any = getattr(self._selector, "fileno", None)
        return int(fileno()) if fileno is not None else -1

    def register(self, fd: int, mask: int) -> None:
        """Start watching *fd* for *mask*."""
        self._selector.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        """Watch *fd* for a different *mask*."""
        self._selector.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        """Stop watching *fd*."""
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to *timeout* seconds (None: forever) for ready fds."""
        return [(key.fd, mask) for key, mask in self._selector.select(timeout)]

    def close(self) -> None:
        """Release the selector."""
        self._selector.close()


Poller = EpollPoller if hasattr(select, "epoll") else SelectorPoller


def fileobj_to_fd(fileobj: Any) -> int:
    """An fd from an int or an object with ``fileno()``, with asyncio's errors."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd

"""FdTable: the loop's poller, its wakeup fd and the table of watched fds.

The part of ``_LoopCore`` that I/O readiness goes through: ``add_reader()``
and the rest register a Handle per fd and direction, and each turn's poll
results become ready Handles in ``_process_events()``. A native base of its
own (below ``_LoopCore``, above ``LoopBase``) so that ``loop.py`` stays
readable in one sitting; ``_LoopCore.__init__`` sets the fields.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from tidal._core.handles import Handle, _Handle
from tidal._core.loopbase import LoopBase
from tidal._core.native import mypyc_attr
from tidal._core.poller import fileobj_to_fd

#: deque.append as a descriptor: compiled, ``ready.append(x)`` looks the method up by name.
_deque_append: Final = deque.append


class _FdEntry:
    """What the loop knows about one registered fd."""

    __slots__ = ("reader", "writer", "mask")

    def __init__(self) -> None:
        # Any: besides Handles, I/O waiters of their own (_io/sock.py) sit here.
        self.reader: Any = None
        self.writer: Any = None
        self.mask: int = 0


@mypyc_attr(allow_interpreted_subclasses=True)  # _LoopCore and every loop class
class FdTable(LoopBase):
    """The poller, the wakeup fd and the fd table (see the module docstring)."""

    #: Any: the test loop (tidal.testing) puts a poller of its own here.
    _poller: Any
    _fds: dict[int, _FdEntry]
    _wakeup_r: int
    _wakeup_w: int
    #: The poller's event bits, as native ints (a poller put in its place
    #: later, as the test loop's, reports the same ones).
    _readable: int
    _writable: int

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _write_to_self(self) -> None:
        try:
            os.write(self._wakeup_w, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass  # the counter is full or the loop is closing: it is awake anyway

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self._wakeup_r, 4096):
                if self._wakeup_r == self._wakeup_w:
                    break  # an eventfd read empties the counter at once
        except OSError:
            pass

    def _process_events(self, events: list[tuple[int, int]]) -> None:
        if not events:
            return
        fds = self._fds
        ready = self._tidal_ready
        readable = self._readable
        writable = self._writable
        for fd, ev in events:
            entry = fds.get(fd)
            if entry is None:
                if fd == self._wakeup_r:
                    FdTable._drain_wakeup(self)  # not a by-name self-call (see _LoopCore._hooked)
                continue
            # A reader or writer is a Handle (typed: its flag is read natively,
            # compiled) or an I/O waiter of _io/sock.py's.
            if ev & readable:
                reader = entry.reader
                if type(reader) is _Handle:
                    handle: Handle = reader
                    if not handle._cancelled:
                        _deque_append(ready, handle)
                elif reader is not None and not reader._cancelled:
                    _deque_append(ready, reader)
            if ev & writable:
                writer = entry.writer
                if type(writer) is _Handle:
                    handle = writer
                    if not handle._cancelled:
                        _deque_append(ready, handle)
                elif writer is not None and not writer._cancelled:
                    _deque_append(ready, writer)

    # -- I/O registration -------------------------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> int:
        # Overridden by the transport layer, which refuses fds it owns.
        return fileobj_to_fd(fd)

    def _add_io(self, fileobj: Any, callback: Callable[..., object], args: tuple[Any, ...],
                writer: bool) -> Handle:
        self._check_closed()
        fd = self._ensure_fd_no_transport(fileobj)
        handle = _Handle(callback, args, self, None)
        entry = self._fds.get(fd)
        poller = self._poller
        if entry is None:
            entry = _FdEntry()
            entry.mask = poller.OUT if writer else poller.IN
            poller.register(fd, entry.mask)
            self._fds[fd] = entry
        else:
            mask = entry.mask | (poller.OUT if writer else poller.IN)
            if mask != entry.mask:
                poller.modify(fd, mask)
                entry.mask = mask
        old = entry.writer if writer else entry.reader
        if writer:
            entry.writer = handle
        else:
            entry.reader = handle
        if old is not None:
            old.cancel()
        return handle

    def _remove_io(self, fileobj: Any, writer: bool) -> bool:
        if self._closed:
            return False
        fd = fileobj_to_fd(fileobj)
        entry = self._fds.get(fd)
        if entry is None:
            return False
        poller = self._poller
        handle = entry.writer if writer else entry.reader
        mask = entry.mask & ~(poller.OUT if writer else poller.IN)
        if mask:
            if mask != entry.mask:
                poller.modify(fd, mask)
                entry.mask = mask
            if writer:
                entry.writer = None
            else:
                entry.reader = None
        else:
            poller.unregister(fd)
            del self._fds[fd]
        if handle is not None:
            handle.cancel()
            return True
        return False

    def add_reader(  # type: ignore[override]
        self, fd: Any, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` whenever *fd* is readable."""
        self._add_io(fd, callback, args, False)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching *fd* for reading; True if a reader was registered."""
        return self._remove_io(fd, False)

    def add_writer(  # type: ignore[override]
        self, fd: Any, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` whenever *fd* is writable."""
        self._add_io(fd, callback, args, True)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching *fd* for writing; True if a writer was registered."""
        return self._remove_io(fd, True)

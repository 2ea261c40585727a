"""Direct entries in the loop's fd table, for callbacks the I/O layer owns.

The loop core dispatches poll events to whatever sits in ``loop._fds[fd]``:
any object with ``_cancelled``, ``cancel()`` and ``_run()`` will do.  The
public ``add_reader()`` path refuses fds owned by transports and allocates a
Handle per call; transports and ``sock_*`` operations register their own
objects here instead, once per registration.
"""

from __future__ import annotations

from typing import Any

from tidal._core.fdtable import _FdEntry


def watch(loop: Any, fd: int, obj: Any, writer: bool) -> None:
    """Make *obj* the reader (or writer) of *fd*; a previous one is cancelled."""
    fds = loop._fds
    poller = loop._poller
    bit = poller.OUT if writer else poller.IN
    entry = fds.get(fd)
    if entry is None:
        entry = _FdEntry()
        poller.register(fd, bit)
        entry.mask = bit
        fds[fd] = entry
    elif not entry.mask & bit:
        mask = entry.mask | bit
        poller.modify(fd, mask)
        entry.mask = mask
    if writer:
        old = entry.writer
        entry.writer = obj
    else:
        old = entry.reader
        entry.reader = obj
    if old is not None and old is not obj:
        old.cancel()


def unwatch(loop: Any, fd: int, writer: bool, obj: Any = None) -> bool:
    """Stop watching *fd* for one direction; with *obj*, only if *obj* is still the one.

    The removed object is cancelled so that an event already queued for it
    this turn does not run.  Returns True if something was removed.
    """
    if loop._closed:
        return False
    entry = loop._fds.get(fd)
    if entry is None:
        return False
    current = entry.writer if writer else entry.reader
    if current is None or (obj is not None and current is not obj):
        return False
    poller = loop._poller
    mask = entry.mask & ~(poller.OUT if writer else poller.IN)
    if mask:
        poller.modify(fd, mask)
        entry.mask = mask
        if writer:
            entry.writer = None
        else:
            entry.reader = None
    else:
        poller.unregister(fd)
        del loop._fds[fd]
        # An add_reader() registration replaced by a sock_* wait ends here too.
        loop._io_fileobjs.pop(fd, None)
    current.cancel()
    return True

"""Unix signal handlers on the loop: add_signal_handler, remove_signal_handler.

Python runs signal handlers in the main thread between bytecodes, which may
be never while the loop sleeps in the poller.  So, as asyncio does, the loop
installs a do-nothing Python handler and asks ``signal.set_wakeup_fd`` to
write each signal's number to a non-blocking pipe the loop watches.  The
reader turns each byte into the registered Handle on the ready queue.

The pipe is made on the first handler and watched only while handlers exist;
it lives until the loop closes, so a signal that arrived just before the
last handler was removed and a new one added is still seen, as on asyncio
(whose self-pipe is permanent).
"""

from __future__ import annotations

import errno
import inspect
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

from tidal._core.handles import Handle
from tidal._core.loop import BaseEventLoop
from tidal._core.tasks import iscoroutine

logger = logging.getLogger("asyncio")


def _sighandler_noop(signum: int, frame: Any) -> None:
    """The Python-level handler: the work happens through the wakeup fd."""


def _check_signal(sig: object) -> int:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")
    return sig


def _clear_wakeup_fd() -> None:
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError) as exc:
        logger.info("set_wakeup_fd(-1) failed: %s", exc)


class SignalMixin(BaseEventLoop):
    """Unix signal handlers on the loop: add_signal_handler, remove_signal_handler."""

    def __init__(self, selector: Any = None) -> None:
        super().__init__(selector)
        self._signal_handlers: dict[int, Handle] = {}
        self._signal_rfd = -1
        self._signal_wfd = -1

    def add_signal_handler(  # type: ignore[override]
        self, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        """Run ``callback(*args)`` on the loop whenever signal *sig* arrives.

        Raise ValueError for an invalid signal number, RuntimeError for one
        that cannot be caught or when not in the main thread.
        """
        if iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        self._check_closed()
        new_pipe = self._signal_rfd < 0
        if new_pipe:
            self._signal_rfd, self._signal_wfd = self._make_signal_pipe()
        try:
            # Fails outside the main thread: checked first, so a loop running
            # in another thread cannot take over signals.
            signal.set_wakeup_fd(self._signal_wfd)
        except (ValueError, OSError) as exc:
            if new_pipe:
                self._close_signal_pipe()
            raise RuntimeError(str(exc)) from None

        watched = bool(self._signal_handlers)
        self._signal_handlers[sig] = Handle(callback, args, self, None)
        try:
            signal.signal(sig, _sighandler_noop)
            # SA_RESTART: fewer EINTRs for the rest of the program.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                _clear_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if not watched:
            self._add_io(self._signal_rfd, self._read_signals, (), False)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for *sig*; True if there was one.

        The signal goes back to its default action (SIGINT to raising
        KeyboardInterrupt).
        """
        _check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if not self._signal_handlers:
            _clear_wakeup_fd()
            self._remove_io(self._signal_rfd, False)
        return True

    @staticmethod
    def _make_signal_pipe() -> tuple[int, int]:
        # set_wakeup_fd() needs a non-blocking fd; a full pipe just drops bytes.
        if hasattr(os, "pipe2"):
            return os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        return r, w

    def _close_signal_pipe(self) -> None:
        if self._signal_rfd >= 0:
            os.close(self._signal_rfd)
            os.close(self._signal_wfd)
            self._signal_rfd = self._signal_wfd = -1

    def _read_signals(self) -> None:
        try:
            data = os.read(self._signal_rfd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            self._handle_signal(signum)

    def _handle_signal(self, sig: int) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return  # a signal with some other Python handler, or a race
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            # We are on the loop's thread (in a reader callback): no wakeup needed.
            self._ready.append(handle)

    def close(self) -> None:
        """Close the loop, removing its signal handlers."""
        super().close()
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        elif self._signal_handlers:
            warnings.warn(
                f"Closing the loop {self!r} on interpreter shutdown stage, "
                f"skipping signal handlers removal",
                ResourceWarning, source=self,
            )
            self._signal_handlers.clear()
            # The wakeup fd still names our pipe: keeping it open means a
            # late signal cannot write into some other file reusing the fd.
            return
        self._close_signal_pipe()

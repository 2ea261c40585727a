"""Which loop is current: running-loop lookup, the policy, and the legacy forms.

tidal shares asyncio's notion of "the current loop": the running loop is
registered where ``asyncio.get_running_loop()`` reads it, and the loop set with
:func:`set_event_loop` is kept by asyncio's active policy.  So a library that
calls ``asyncio.get_event_loop()`` inside a tidal program finds tidal's loop.

:class:`EventLoopPolicy` makes asyncio itself create tidal loops; installing it
is what ``tidal.install()`` and ``python -m tidal run`` do.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings
from typing import Any

from tidal._core import _aio

__all__ = (
    "EventLoopPolicy", "get_event_loop", "set_event_loop", "new_event_loop",
    "get_running_loop", "install",
)


def get_running_loop() -> Any:
    """The loop running in this thread; RuntimeError if there is none."""
    loop = _aio.get_running_loop_or_none()
    if loop is None:
        raise RuntimeError("no running event loop")
    return loop


def new_event_loop() -> Any:
    """A new tidal event loop (not set as current)."""
    from tidal._loop import EventLoop

    return EventLoop()


def _warn_no_current_loop() -> None:
    # Point the warning at the first frame outside tidal and asyncio.
    stacklevel = 2
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("tidal", "asyncio")):
            break
        frame = frame.f_back  # type: ignore[assignment]
        stacklevel += 1
    warnings.warn("There is no current event loop", DeprecationWarning, stacklevel=stacklevel)


class _Local(threading.local):
    # asyncio's names: after a fork asyncio swaps the policy's _local for its
    # own _Local (events.on_fork), and code reads policy._local._loop.
    _loop: Any = None
    _set_called: bool = False


class EventLoopPolicy(asyncio.AbstractEventLoopPolicy):
    """An asyncio event-loop policy whose loops are tidal loops."""

    def __init__(self) -> None:
        self._local = _Local()
        self._watcher: Any = None

    def get_event_loop(self) -> Any:
        """This thread's loop; created (with a DeprecationWarning) in the main thread."""
        local = self._local
        if (
            local._loop is None
            and not local._set_called
            and threading.current_thread() is threading.main_thread()
        ):
            _warn_no_current_loop()
            self.set_event_loop(self.new_event_loop())
        if local._loop is None:
            raise RuntimeError(
                f"There is no current event loop in thread {threading.current_thread().name!r}."
            )
        return local._loop

    def set_event_loop(self, loop: Any) -> None:
        """Make *loop* this thread's current loop."""
        self._local._set_called = True
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(
                "loop must be an instance of AbstractEventLoop or None, "
                f"not '{type(loop).__name__}'"
            )
        self._local._loop = loop

    def new_event_loop(self) -> Any:
        """A new tidal loop."""
        return new_event_loop()

    # Child watchers (deprecated in 3.12, gone in 3.14): tidal watches its
    # child processes itself, so a watcher is only kept for code that sets
    # and reads one back, as asyncio's Unix policy does.
    def get_child_watcher(self) -> Any:
        """The watcher set with set_child_watcher() (a ThreadedChildWatcher if none)."""
        watcher = self._watcher
        if watcher is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                watcher = self._watcher = asyncio.ThreadedChildWatcher()
        _warn_watcher_deprecated("get_child_watcher")
        return watcher

    def set_child_watcher(self, watcher: Any) -> None:
        """Keep *watcher* (closing the previous one); tidal does not use it."""
        if watcher is not None and not isinstance(watcher, asyncio.AbstractChildWatcher):
            raise AssertionError("watcher must be an AbstractChildWatcher or None")
        old = self._watcher
        if old is not None:
            old.close()
        self._watcher = watcher
        _warn_watcher_deprecated("set_child_watcher")


def _warn_watcher_deprecated(name: str) -> None:
    if sys.version_info >= (3, 12):
        warnings.warn(
            f"{name!r} is deprecated as of Python 3.12 and will be removed in Python 3.14.",
            DeprecationWarning, stacklevel=3,
        )


def _policy() -> asyncio.AbstractEventLoopPolicy:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_event_loop_policy()


def get_event_loop() -> Any:
    """The running loop, else this thread's current loop.

    As tutorials expect, with no loop at all in the main thread it creates a
    tidal loop and sets it as current, with a DeprecationWarning rather than
    the error newer asyncio versions move toward.
    """
    loop = _aio.get_running_loop_or_none()
    if loop is not None:
        return loop
    policy = _policy()
    if isinstance(policy, EventLoopPolicy):
        return policy.get_event_loop()
    # asyncio's own policy: read its current loop without letting it create
    # an asyncio loop in our place.
    local = getattr(policy, "_local", None)
    if local is None:
        return policy.get_event_loop()
    current = getattr(local, "_loop", None)
    if current is not None:
        return current
    if not getattr(local, "_set_called", False) and (
        threading.current_thread() is threading.main_thread()
    ):
        _warn_no_current_loop()
        loop = new_event_loop()
        policy.set_event_loop(loop)
        return loop
    raise RuntimeError(
        f"There is no current event loop in thread {threading.current_thread().name!r}."
    )


def _get_event_loop_for_future() -> Any:
    # Future(loop=None) / Task(loop=None): asyncio uses get_event_loop() too.
    return get_event_loop()


def set_event_loop(loop: Any) -> None:
    """Set this thread's current loop (shared with asyncio's active policy)."""
    _policy().set_event_loop(loop)


def install() -> None:
    """Make asyncio create tidal loops: ``asyncio.run()`` then runs on tidal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(EventLoopPolicy())

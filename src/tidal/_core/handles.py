"""Handle and TimerHandle: a callback the loop will run, and one it will run later.

A Handle is also what the ready queue holds, next to tasks: the loop calls
``item._run()`` on whatever it pops, so a Task can sit in the queue itself
instead of being wrapped in a Handle (see ``tasks.py``).
"""

from __future__ import annotations

import contextvars
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from tidal._core.format import extract_stack, format_callback_source
from tidal._core.interpreted import handle_run, install
from tidal._core.native import NativeBase, mypyc_attr

_copy_context: Final = contextvars.copy_context
#: Context.run as a descriptor: compiled, ``ctx.run(...)`` looks the method up by name.
_context_run: Final = contextvars.Context.run


@mypyc_attr(allow_interpreted_subclasses=True)
class Handle(NativeBase):
    """A callback with its arguments and context, scheduled on a loop."""

    __slots__ = (
        "_callback", "_args", "_cancelled", "_loop", "_source_traceback", "_repr",
        "__weakref__", "_context",
    )

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        self._context: contextvars.Context = _copy_context() if context is None else context
        self._loop: Any = loop
        self._callback: Any = callback
        self._args: Any = args
        self._cancelled: bool = False
        self._repr: str | None = None
        # tidal's loop exposes the flag directly; anything else is asked.
        # A tidal loop (its ready queue is a real deque; a Mock loop has every
        # attribute) exposes the flag directly; anything else is asked.
        if type(getattr(loop, "_tidal_ready", None)) is deque:
            debug = loop._debug
        else:
            debug = loop.get_debug()
        self._source_traceback: Any = (
            extract_stack(sys._getframe(_CALLER_DEPTH)) if debug else None
        )

    def _repr_info(self) -> list[str]:
        info = [self.__class__.__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(
                format_callback_source(self._callback, self._args, self._loop.get_debug())
            )
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))

    def get_context(self) -> contextvars.Context:
        """The context the callback runs in."""
        return self._context

    def cancel(self) -> None:
        """Cancel the callback; does nothing if it already ran or was cancelled."""
        if not self._cancelled:
            self._cancelled = True
            if self._loop.get_debug():
                # Keep the text: a slow-callback warning may still name it.
                self._repr = repr(self)
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        """True if the handle was cancelled."""
        return self._cancelled

    def _run(self) -> None:
        # The public classes' _run is interpreted.handle_run (see there); this
        # one is what the compiled loop calls on a plain Handle, frame-free
        # (loop.run_native), and does the same.
        if self._cancelled:
            return
        args = self._args
        try:
            # By arity: compiled, a starred call builds a list, extends it and
            # copies it to a tuple (~1,100 instructions a handle); a call with
            # fixed arguments is one vectorcall.
            if not args:
                _context_run(self._context, self._callback)
            elif len(args) == 1:
                _context_run(self._context, self._callback, args[0])
            else:
                _context_run(self._context, self._callback, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        source = format_callback_source(self._callback, self._args, self._loop.get_debug())
        context: dict[str, Any] = {
            "message": f"Exception in callback {source}",
            "exception": exc,
            "handle": self,
        }
        if self._source_traceback:
            context["source_traceback"] = self._source_traceback
        self._loop.call_exception_handler(context)


@mypyc_attr(allow_interpreted_subclasses=True)
class TimerHandle(Handle):
    """A Handle due at an absolute ``loop.time()``."""

    __slots__ = ("_scheduled", "_when")

    def __init__(
        self,
        when: Any,  # not float: see _when below
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        super().__init__(callback, args, loop, context)
        if self._source_traceback and _CALLER_DEPTH:
            del self._source_traceback[-1]  # this __init__'s own frame
        # Any, not float: mypyc would store an int as a float, and asyncio
        # keeps (and repr()s) the value it was given.
        self._when: Any = when
        self._scheduled: bool = False

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __hash__(self) -> int:
        return hash(self._when)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when < other._when)
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when < other._when) or self.__eq__(other)
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when > other._when)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when > other._when) or self.__eq__(other)
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return (
                self._when == other._when
                and self._callback == other._callback
                and self._args == other._args
                and self._cancelled == other._cancelled
            )
        return NotImplemented

    def cancel(self) -> None:
        """Cancel the timer; the loop drops it from its heap lazily."""
        if not self._cancelled:
            self._loop._timer_handle_cancelled(self)
        super().cancel()

    def when(self) -> Any:
        """The absolute ``loop.time()`` at which the callback is due."""
        return self._when


#: sys._getframe() depth of the caller of a method here: 1, or 0 when this
#: module is compiled (a compiled function pushes no frame; it has no __code__).
_CALLER_DEPTH: Final[int] = 1 if hasattr(Handle.cancel, "__code__") else 0

# The classes users see are these, in both builds (see native.NativeBase); the
# names stay for the modules that import them.
_Handle: Final[type[Handle]] = Handle
_TimerHandle: Final[type[TimerHandle]] = TimerHandle
install(_Handle, {"_run": handle_run})
install(_TimerHandle, {"_run": handle_run})

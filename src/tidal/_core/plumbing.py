"""Tracebacks through tasks without tidal's plumbing frames.

asyncio's C Task and Future add no frames between two user frames; tidal's
step, ``Future.__await__``, ``result()`` and the socket operations would.
The core registers those functions here (:func:`internal_frames`), and the
error paths call :func:`strip_internal_frames` where an exception crosses a
task boundary, and :func:`finish_await` before an exception is thrown into a
coroutine awaiting a future (docs/design.md, "Tracebacks").
"""

from __future__ import annotations

from types import CoroutineType, GeneratorType
from typing import Any, Final

from tidal._core.interpreted import future_await
from tidal._core.native import frame_key

__all__ = ("finish_await", "internal_frames", "strip_internal_frames")


#: Code objects (or, compiled, (module, name) pairs) of the frames
#: strip_internal_frames() removes.
_INTERNAL_CODES: Final[set[Any]] = set()
#: Whether any entry is a compiled function's (module, name) pair.
_compiled_keys: bool = False
#: id() of each code object in _INTERNAL_CODES (which keeps them alive).
_INTERNAL_IDS: Final[set[int]] = set()


def internal_frames(*funcs: Any) -> None:
    """Register functions whose frames tracebacks through tasks should not show."""
    global _compiled_keys
    for func in funcs:
        key = frame_key(func)
        _INTERNAL_CODES.add(key)
        if type(key) is tuple:
            _compiled_keys = True
        else:
            _INTERNAL_IDS.add(id(key))


def finish_await(coro: Any) -> None:
    # Close the Future.__await__ generator the coroutine is suspended in, if
    # that is what it awaits: an exception thrown in then comes out of an
    # exhausted generator, which adds no frame, so the traceback goes from
    # the user's await line straight to where the error was raised.  Only on
    # the error path; the coroutine sees exactly the same exception.
    inner = coro
    while True:
        cls = type(inner)
        if cls is CoroutineType:
            inner = inner.cr_await
        elif cls is GeneratorType:
            if inner.gi_code is _AWAIT_CODE:  # parked at its yield: it delegates to nothing
                inner.close()
                return
            inner = inner.gi_yieldfrom
        else:  # None (nothing awaited), or an iterator of another kind
            return


#: The code of Future.__await__, a Python generator in both builds (interpreted.py).
_AWAIT_CODE: Final[Any] = future_await.__code__


def strip_internal_frames(exc: BaseException) -> None:
    """Unlink tidal's plumbing frames from *exc*'s traceback (and its chain).

    asyncio's C Task and Future add no frames between two user frames; the
    pure-Python step, ``Future.__await__`` and ``result()`` would.  Run only
    on error paths, where an exception crosses a task boundary.  The last
    entry (where the exception was raised) is always kept.
    """
    # The id() test inline, _is_internal() only for compiled keys: a call per
    # traceback entry was a third of the cost, on every cancelled task.
    ids = _INTERNAL_IDS
    compiled = _compiled_keys
    seen = 0
    while exc is not None and seen < 8:  # bounded: chains can be long or cyclic
        tb = exc.__traceback__
        while (
            tb is not None
            and tb.tb_next is not None
            and (id(tb.tb_frame.f_code) in ids or (compiled and _is_internal(tb.tb_frame)))
        ):
            tb = tb.tb_next
        if tb is not exc.__traceback__:
            exc.__traceback__ = tb
        while tb is not None:
            nxt = tb.tb_next
            skip = nxt
            while (
                skip is not None
                and skip.tb_next is not None
                and (id(skip.tb_frame.f_code) in ids or (compiled and _is_internal(skip.tb_frame)))
            ):
                skip = skip.tb_next
            if skip is not nxt:
                tb.tb_next = skip
            tb = skip
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1


def _is_internal(frame: Any) -> bool:
    code = frame.f_code
    # By identity: a code object's hash is computed afresh from its whole
    # contents on every call (1-4 us), paid per frame of every cancellation.
    if id(code) in _INTERNAL_IDS:
        return True
    # A compiled function's synthetic frame: a fresh code object each time.
    return _compiled_keys and (frame.f_globals.get("__name__"), code.co_name) in _INTERNAL_CODES

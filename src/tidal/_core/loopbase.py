"""LoopBase: the part of a tidal loop its futures and tasks read on every wake-up.

A future completing on a tidal loop appends its waiters to the loop's ready
queue itself, and must first know three things: whether the loop is closed,
in debug mode, or diverted (``call_soon`` set on the instance, as
``mock.patch.object`` does, or overridden by a subclass: asyncio's Future
calls it for every callback, so tidal's must too). Read from a loop typed
``Any`` these were three generic attribute lookups, ``__dict__`` included
(~1,000 instructions compiled, per completion); from a ``LoopBase`` they are
field reads. Its own module, below both: ``futures.py`` and ``tasks.py`` type
their loop with it, and the loop (``fdtable.py``, ``loop.py``) derives from it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from tidal._core.native import mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)  # _LoopCore and every loop class
class LoopBase:
    """The fields of a tidal loop that its futures and tasks read natively.

    No base class: see ``_LoopCore`` (a Python base's weak-reference list).
    ``_LoopCore.__init__`` sets every field; the compiled build keeps
    ``_divert`` up to date (``loopservices.BaseEventLoop.__setattr__``), the
    pure build's futures also read the instance dict.
    """

    #: The ready queue (``_LoopCore._ready``), under a name foreign code will
    #: not collide with.
    _tidal_ready: deque[Any]
    _closed: bool
    _debug: bool
    #: True while callbacks must go through ``call_soon()`` (see the module docstring).
    _divert: bool
    #: The instance's own ``__dict__``, where ``mock.patch.object`` puts a
    #: patched method: ``"call_soon" in loop._tidal_attrs`` is a field read and
    #: a dict probe, where ``loop.__dict__`` is a generic descriptor call
    #: (~300-500 instructions more per check in the pure build: one per
    #: completion, task created and sleep). In the pure build it is in that
    #: dict itself, a cycle the loop's others already make.
    _tidal_attrs: dict[str, Any]


def tidal_loop(loop: object) -> LoopBase | None:
    """*loop* if it is a tidal loop, else None (a foreign loop, a Mock, a proxy)."""
    # type(), not isinstance(): a Mock(spec=...) passes isinstance() without
    # being one, and compiled code would read its fields as a loop's.
    if issubclass(type(loop), LoopBase):
        core = cast(LoopBase, loop)
        if type(getattr(core, "_tidal_ready", None)) is deque:
            return core
    return None

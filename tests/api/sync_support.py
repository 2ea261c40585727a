"""Helpers shared by the tests of the synchronization primitives."""

from __future__ import annotations

import re


def bracket(obj: object) -> str:
    """The ``[...]`` part of a primitive's repr, after checking the rest of it.

    asyncio's shape is ``<asyncio.locks.Lock object at 0x... [unlocked]>``;
    tidal's names its own module.
    """
    m = re.fullmatch(r"<[\w.]+\.(\w+) object at 0x[0-9a-f]+ \[(.*)\]>", repr(obj))
    assert m is not None, repr(obj)
    assert m.group(1) == type(obj).__name__
    return m.group(2)

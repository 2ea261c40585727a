"""The loop fixtures' common part (``loop`` and ``virtual_loop`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any


def current_loop(aio: ModuleType, lp: Any) -> Iterator[Any]:
    """Set *lp* as *aio*'s current loop for a fixture's test; close it afterwards.

    The garbage collection that makes a leak report in the test that caused
    it runs after every test, once its fixtures are gone (tests/conftest.py).
    """
    aio.set_event_loop(lp)
    yield lp
    if not lp.is_closed():
        if not lp.is_running():
            lp.run_until_complete(lp.shutdown_asyncgens())
        lp.close()
    aio.set_event_loop(None)

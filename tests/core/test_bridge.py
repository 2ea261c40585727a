"""wrap_future: concurrent.futures futures on the loop, run on tidal and on asyncio."""

from __future__ import annotations

import concurrent.futures
from types import ModuleType
from typing import Any

import pytest


def test_wrap_future_rejects_other_objects(aio: ModuleType, loop: Any) -> None:
    # asyncio asserts; the message is compared whole (under pytest too, which
    # rewrites the asserts of tidal's modules: tidal ships a pytest plugin).
    with pytest.raises(AssertionError,
                       match=r"\Aconcurrent\.futures\.Future is expected, got 1\Z"):
        aio.wrap_future(1, loop=loop)


def test_wrap_future_mirrors_the_result(aio: ModuleType, loop: Any) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        wrapped = aio.wrap_future(pool.submit(sum, [1, 2, 3]), loop=loop)
        assert aio.isfuture(wrapped) and wrapped.get_loop() is loop
        assert loop.run_until_complete(wrapped) == 6
    assert aio.wrap_future(wrapped) is wrapped

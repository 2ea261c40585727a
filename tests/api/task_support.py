"""Small coroutines shared by the task-API tests (gather, wait, TaskGroup...)."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any


async def value(aio: ModuleType, x: Any, delay: float = 0) -> Any:
    """Return *x* after sleeping *delay* seconds (0: one loop turn)."""
    await aio.sleep(delay)
    return x


async def fail(aio: ModuleType, exc: BaseException, delay: float = 0) -> Any:
    """Raise *exc* after sleeping *delay* seconds (0: one loop turn)."""
    await aio.sleep(delay)
    raise exc


async def ticker(aio: ModuleType, order: list[str], turns: int) -> None:
    """Log ``other <i>`` once per loop turn: a clock the other entries are read against."""
    for i in range(turns):
        order.append(f"other {i}")
        await aio.sleep(0)


async def child(
    aio: ModuleType, order: list[str], name: str, turns: int, exc: BaseException | None = None
) -> str:
    """Take *turns* loop turns, log ``<name> done``, then return *name* or raise *exc*.

    A cancellation on the way is logged as ``<name> cancelled``.
    """
    try:
        for _ in range(turns):
            await aio.sleep(0)
    except asyncio.CancelledError:
        order.append(f"{name} cancelled")
        raise
    order.append(f"{name} done")
    if exc is not None:
        raise exc
    return name

"""First behaviours of the core, on tidal and on asyncio."""

from __future__ import annotations

from types import ModuleType
from typing import Any


def test_run_until_complete_returns_result(loop: Any) -> None:
    async def main() -> int:
        return 42

    assert loop.run_until_complete(main()) == 42


def test_callbacks_run_in_fifo_order(loop: Any) -> None:
    seen: list[int] = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [0, 1, 2, 3, 4]


def test_task_repr_and_name(aio: ModuleType, loop: Any) -> None:
    async def child() -> None:
        await aio.sleep(0)

    async def main() -> tuple[str, str]:
        t = loop.create_task(child(), name="worker")
        r1 = repr(t)
        await t
        return r1, repr(t)

    pending, done = loop.run_until_complete(main())
    assert pending.startswith("<Task pending name='worker' coro=<")
    assert "child() running at " in pending
    assert done.startswith("<Task finished name='worker' coro=<")
    assert "child() done, defined at " in done
    assert done.endswith("result=None>")

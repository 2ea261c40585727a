"""The timer asyncio's sleep() schedules, seen by an asyncio program on tidal's loop and asyncio's.

On tidal's loop ``call_later(d, asyncio.futures._set_result_unless_cancelled,
fut, r)`` returns a lean timer (``_core/timers.py``); everything a program can
ask of it must answer as a TimerHandle does.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import sys
import weakref
from asyncio import futures as aio_futures
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

Dropin = Callable[[Coroutine[Any, Any, Any]], Any]
_var: contextvars.ContextVar[str] = contextvars.ContextVar("_var", default="unset")


def _arm(loop: Any, delay: float, result: Any = None) -> tuple[Any, Any]:
    fut = loop.create_future()
    return fut, loop.call_later(delay, aio_futures._set_result_unless_cancelled, fut, result)


def test_api_and_repr(dropin: Dropin) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        _var.set("armed")
        fut, h = _arm(loop, 5, "r")
        _var.set("later")
        info: dict[str, Any] = {
            "isinstance": isinstance(h, asyncio.TimerHandle) or type(h).__name__ == "TimerHandle"
            or h.__class__.__name__ == "TimerHandle",
            "when": abs(h.when() - loop.time() - 5) < 1,
            "cancelled": h.cancelled(),
            "hash": hash(h) == hash(h.when()),
            "weak": weakref.ref(h)() is h,
            "ctx_same": not hasattr(h, "get_context") or h.get_context() is h.get_context(),
            "args": h._args == (fut, "r"),
        }
        h.cancel()
        h.cancel()
        info["after"] = (h.cancelled(), h._callback, h._args, fut.done())
        info["repr_cancelled"] = re.sub(r"when=[0-9.]+", "when=W", repr(h))
        return info

    info = dropin(main())
    assert info == {
        "isinstance": True, "when": True, "cancelled": False, "hash": True, "weak": True,
        "ctx_same": True, "args": True, "after": (True, None, None, False),
        "repr_cancelled": "<TimerHandle cancelled when=W>",
    }


def test_repr_pending(dropin: Dropin) -> None:
    async def main() -> str:
        _fut, h = _arm(asyncio.get_running_loop(), 5, "r")
        text = repr(h)
        h.cancel()
        return re.sub(r"when=[0-9.]+", "when=W", re.sub(r" at 0x[0-9a-f]+", "", text))

    text = dropin(main())
    # 3.13 shows the arguments in debug mode only
    args = "()" if sys.version_info >= (3, 13) else "(<Future pending>, 'r')"
    assert text.startswith(f"<TimerHandle when=W _set_result_unless_cancelled{args} at ")


def test_order_fires_and_compares(dropin: Dropin) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        got: list[Any] = []
        futs = []
        now = loop.time()
        plain = loop.call_at(now + 0.02, lambda: None)
        for i, d in enumerate((0.03, 0.01, 0.02)):
            fut, h = _arm(loop, 0, i)
            h.cancel()
            fut, h = loop.create_future(), loop.call_at(
                now + d, aio_futures._set_result_unless_cancelled, loop.create_future(), i)
            futs.append((fut, h))
        fut, h = futs[1]
        same = loop.call_at(h.when(), aio_futures._set_result_unless_cancelled,
                            h._args[0], 1)
        cmp = (h == same, h < plain, plain > h, h <= same, same >= h, plain != h, h != same)
        same.cancel()
        for _f, t in futs:
            t._args[0].add_done_callback(lambda f: got.append(f.result()))
        await asyncio.sleep(0.05)
        return got, cmp, [t.cancelled() for _f, t in futs]

    got, cmp, cancelled = dropin(main())
    assert got == [1, 2, 0]
    assert cmp == (True, True, True, True, True, True, False)
    assert cancelled == [False, False, False]


def test_completed_by_someone_else_is_reported(dropin: Dropin) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, ctx: errors.append(ctx))
        fut, h = _arm(loop, 0.001, "timer")
        fut.set_result("other")
        cancelled, _h2 = _arm(loop, 0.001)
        cancelled.cancel()
        await asyncio.sleep(0.01)
        return [(e["message"].split("(")[0], type(e["exception"]), e["handle"] is h)
                for e in errors]

    assert dropin(main()) == [
        ("Exception in callback _set_result_unless_cancelled", asyncio.InvalidStateError, True)
    ]


def test_sleep_cancel_counts_the_timer(dropin: Dropin) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        first = asyncio.create_task(asyncio.sleep(5))  # keeps the cancelled ones off the top
        tasks = [asyncio.create_task(asyncio.sleep(10)) for _ in range(3)]
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        counts = loop._timer_cancelled_count, len(loop._scheduled)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.sleep(0)
        return counts, loop._timer_cancelled_count, len(loop._scheduled)

    assert dropin(main()) == ((3, 4), 0, 0)


@pytest.mark.skipif(not hasattr(asyncio.Handle, "get_context"), reason="3.12+")
def test_context_copy_of_the_caller(dropin: Dropin) -> None:
    async def main() -> str:
        _var.set("inside")
        _fut, h = _arm(asyncio.get_running_loop(), 5)
        value = h.get_context().run(_var.get)
        h.cancel()
        return value

    assert dropin(main()) == "inside"


@pytest.mark.parametrize("debug", [False, True])
def test_debug_mode(dropin: Dropin, debug: bool) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_debug(debug)
        r = await asyncio.sleep(0.001, "ok")
        loop.set_debug(False)
        return r

    assert dropin(main()) == "ok"

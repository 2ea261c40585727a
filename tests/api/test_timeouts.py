"""timeout(), timeout_at() and Timeout, run on tidal and on asyncio (the oracle)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest

PY313 = sys.version_info >= (3, 13)


@pytest.fixture
def loop(virtual_loop: Any) -> Any:
    """Timers here run on virtual time on tidal (tests/conftest.py); asyncio's stay real."""
    return virtual_loop


def test_expiry_raises_timeout_error(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        task = aio.current_task()
        with pytest.raises(TimeoutError) as info:
            async with aio.timeout(0.01) as cm:
                await aio.sleep(1)
        assert cm.expired()
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert task.cancelling() == 0
        return repr(cm)

    assert loop.run_until_complete(main()) == "<Timeout [expired]>"


def test_no_expiry(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        async with aio.timeout(1) as cm:
            await aio.sleep(0)
        assert not cm.expired()
        return repr(cm)

    assert loop.run_until_complete(main()) == "<Timeout [finished]>"


def test_none_never_expires_and_repr(aio: ModuleType, loop: Any) -> None:
    async def main() -> Any:
        cm = aio.timeout(None)
        assert repr(cm) == "<Timeout [created]>"
        assert cm.when() is None
        async with cm:
            assert repr(cm) == "<Timeout [active] when=None>"
            await aio.sleep(0.001)
        return cm.expired()

    assert loop.run_until_complete(main()) is False


def test_repr_rounds_when(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        async with aio.timeout_at(1234.56789) as cm:
            assert repr(cm) == "<Timeout [active] when=1234.568>"
            assert cm.when() == 1234.56789
            cm.reschedule(None)

    loop.run_until_complete(main())


def test_timeout_at_in_the_past_expires_on_next_turn(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[str]:
        seen = []
        with pytest.raises(TimeoutError):
            async with aio.timeout_at(loop.time() - 1):
                seen.append("entered")
                await aio.sleep(0)
                seen.append("not reached")
        return seen

    assert loop.run_until_complete(main()) == ["entered"]


def test_reschedule(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        async with aio.timeout(None) as cm:
            cm.reschedule(loop.time() + 1)
            cm.reschedule(None)  # drops the pending timer again
            await aio.sleep(0.01)
        assert not cm.expired()
        with pytest.raises(TimeoutError):
            async with aio.timeout(1) as cm2:
                cm2.reschedule(loop.time() + 0.005)
                await aio.sleep(1)

    loop.run_until_complete(main())


def test_reschedule_errors(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        cm = aio.timeout(1)
        with pytest.raises(RuntimeError, match=r"^Timeout has not been entered$"):
            cm.reschedule(1)
        async with cm:
            pass
        with pytest.raises(RuntimeError, match=r"^Cannot change state of finished Timeout$"):
            cm.reschedule(1)
        with pytest.raises(RuntimeError, match=r"^Timeout has already been entered$"):
            async with cm:
                pass
        with pytest.raises(TimeoutError):
            async with aio.timeout(0) as cm2:
                await aio.sleep(1)
        with pytest.raises(RuntimeError, match=r"^Cannot change state of expired Timeout$"):
            cm2.reschedule(None)

    loop.run_until_complete(main())


def test_reschedule_while_expiring(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with aio.timeout(0.001) as cm:
                try:
                    await aio.sleep(1)
                finally:
                    assert cm.expired()
                    with pytest.raises(
                        RuntimeError, match=r"^Cannot change state of expiring Timeout$"
                    ):
                        cm.reschedule(None)

    loop.run_until_complete(main())


def test_needs_a_task(aio: ModuleType, loop: Any) -> None:
    errors: list[BaseException] = []

    def drive() -> None:
        coro = aio.timeout(1).__aenter__()
        try:
            coro.send(None)
        except RuntimeError as exc:
            errors.append(exc)

    loop.call_soon(drive)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert [str(e) for e in errors] == ["Timeout should be used inside a task"]


def test_timeout_needs_running_loop(aio: ModuleType) -> None:
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        aio.timeout(1)
    cm = aio.timeout_at(None)  # no loop needed until entered
    assert repr(cm) == "<Timeout [created]>"


def test_nested_inner_expires(aio: ModuleType, loop: Any) -> None:
    async def main() -> list[str]:
        seen = []
        async with aio.timeout(1) as outer:
            with pytest.raises(TimeoutError):
                async with aio.timeout(0.001):
                    await aio.sleep(1)
            seen.append("inner expired")
            await aio.sleep(0)
        assert not outer.expired()
        return seen

    assert loop.run_until_complete(main()) == ["inner expired"]


def test_nested_outer_expires_first(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, bool]:
        with pytest.raises(TimeoutError):
            async with aio.timeout(0.001) as outer:
                async with aio.timeout(1) as inner:
                    await aio.sleep(1)
        return outer.expired(), inner.expired()

    assert loop.run_until_complete(main()) == (True, False)


def test_both_expire_together(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, bool]:
        when = loop.time() + 0.001
        with pytest.raises(TimeoutError):
            async with aio.timeout_at(when) as outer:
                try:
                    async with aio.timeout_at(when) as inner:
                        await aio.sleep(1)
                except TimeoutError:
                    pytest.fail("the inner timeout must let the outer one handle it")
        return outer.expired(), inner.expired()

    assert loop.run_until_complete(main()) == (True, True)


def test_external_cancel_is_not_a_timeout(aio: ModuleType, loop: Any) -> None:
    async def victim() -> None:
        async with aio.timeout(1):
            await aio.sleep(1)

    async def main() -> None:
        task = loop.create_task(victim())
        await aio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(main())


def test_external_cancel_while_expiring_wins(aio: ModuleType, loop: Any) -> None:
    async def victim() -> None:
        async with aio.timeout(0.001):
            try:
                await aio.sleep(1)
            finally:
                aio.current_task().cancel()  # a second cancellation request
                await aio.sleep(0)

    async def main() -> None:
        task = loop.create_task(victim())
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(main())


def test_swallowed_cancellation_returns_normally(aio: ModuleType, loop: Any) -> None:
    async def main() -> tuple[bool, int]:
        async with aio.timeout(0.001) as cm:
            try:
                await aio.sleep(1)
            except asyncio.CancelledError:
                pass
        return cm.expired(), aio.current_task().cancelling()

    assert loop.run_until_complete(main()) == (True, 0)


def test_other_exception_while_expired(aio: ModuleType, loop: Any) -> None:
    async def main() -> BaseException:
        try:
            async with aio.timeout(0.001):
                try:
                    await aio.sleep(1)
                except asyncio.CancelledError:
                    raise ValueError("cleanup failed") from None
        except ValueError as exc:
            return exc
        raise AssertionError("not reached")

    exc = loop.run_until_complete(main())
    context = exc.__context__
    if PY313:
        # 3.13 slips a TimeoutError in above the CancelledError.
        assert type(context) is TimeoutError
        assert isinstance(context.__cause__, asyncio.CancelledError)
        assert isinstance(context.__context__, asyncio.CancelledError)
    else:
        assert isinstance(context, asyncio.CancelledError)


def test_exception_group_while_expired(aio: ModuleType, loop: Any) -> None:
    async def main() -> BaseException:
        try:
            async with aio.timeout(0.001):
                try:
                    await aio.sleep(1)
                except asyncio.CancelledError:
                    try:
                        raise KeyError("k")
                    except KeyError as inner:
                        raise ExceptionGroup("eg", [inner]) from None
        except ExceptionGroup as exc:
            return exc
        raise AssertionError("not reached")

    group = loop.run_until_complete(main())
    assert isinstance(group, ExceptionGroup)
    member = group.exceptions[0]
    assert group.__context__ is member
    expected = TimeoutError if PY313 else asyncio.CancelledError
    assert type(member.__context__) is expected


def test_cancelled_error_subclass(aio: ModuleType, loop: Any) -> None:
    class MyCancelled(asyncio.CancelledError):
        pass

    async def main() -> type[BaseException]:
        try:
            async with aio.timeout(0.001):
                try:
                    await aio.sleep(1)
                except asyncio.CancelledError:
                    raise MyCancelled() from None
        except BaseException as exc:
            return type(exc)
        raise AssertionError("not reached")

    # 3.13 turns any CancelledError into TimeoutError; 3.11/3.12 only the exact class.
    assert loop.run_until_complete(main()) is (TimeoutError if PY313 else MyCancelled)


def test_timeout_class_is_public_and_final(aio: ModuleType, loop: Any) -> None:
    async def main() -> None:
        cm = aio.Timeout(loop.time() + 1)
        assert repr(cm) == "<Timeout [created]>"
        async with cm:
            assert re.fullmatch(r"<Timeout \[active\] when=[0-9.]+>", repr(cm))

    loop.run_until_complete(main())


def test_dropin_asyncio_timeout(dropin: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def main() -> tuple[bool, str]:
        try:
            async with asyncio.timeout(0.001) as cm:
                await asyncio.sleep(1)
        except TimeoutError:
            pass
        async with asyncio.timeout(1):
            res = await asyncio.sleep(0, "ok")
        return cm.expired(), res

    assert dropin(main()) == (True, "ok")

"""Which loop is current: get/set/new_event_loop, the policy, and legacy forms.

The DeprecationWarning-instead-of-error forms are tidal's deliberate extension
(tutorials still teach them), so those tests run on tidal only.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import tidal


@pytest.fixture
def no_current_loop() -> Iterator[None]:
    """Start with a fresh policy, so no loop is set in this thread."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(None)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop_policy()._local._loop  # type: ignore[attr-defined]
            if loop is not None:
                loop.close()
            asyncio.set_event_loop_policy(old)


def test_get_event_loop_without_loop_creates_tidal_loop(no_current_loop: None) -> None:
    with pytest.warns(DeprecationWarning, match=r"^There is no current event loop$"):
        loop = tidal.get_event_loop()
    assert isinstance(loop, tidal.EventLoop)
    # It is now the current loop, for tidal and for asyncio alike.
    assert tidal.get_event_loop() is loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert asyncio.get_event_loop() is loop


def test_tutorial_run_until_complete_with_get_event_loop(no_current_loop: None) -> None:
    async def hello() -> str:
        await tidal.sleep(0.001)
        return "hi"

    with pytest.warns(DeprecationWarning):
        loop = tidal.get_event_loop()
    assert loop.run_until_complete(hello()) == "hi"


def test_get_event_loop_in_thread_without_loop_raises(no_current_loop: None) -> None:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            tidal.get_event_loop()
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=body, name="worker")
    th.start()
    th.join()
    assert isinstance(errors[0], RuntimeError)
    assert "There is no current event loop in thread 'worker'." == str(errors[0])


def test_get_running_loop(aio: Any) -> None:
    with pytest.raises(RuntimeError, match=r"^no running event loop$"):
        aio.get_running_loop()


def test_set_event_loop_shared_with_asyncio(no_current_loop: None) -> None:
    loop = tidal.new_event_loop()
    try:
        tidal.set_event_loop(loop)
        assert asyncio.get_event_loop() is loop
        assert tidal.get_event_loop() is loop
        with pytest.raises(
            TypeError,
            match=r"^loop must be an instance of AbstractEventLoop or None, not 'object'$",
        ):
            tidal.set_event_loop(object())
    finally:
        tidal.set_event_loop(None)
        loop.close()


def test_policy_makes_asyncio_create_tidal_loops() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        tidal.install()
    try:
        loop = asyncio.new_event_loop()
        assert isinstance(loop, tidal.EventLoop)
        loop.close()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(old)

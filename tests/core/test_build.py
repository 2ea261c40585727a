"""The two builds of one source (docs/design.md, "Compiled build").

The same tests run on the pure-Python package and on the compiled (mypyc)
wheel that CI installs into a fresh venv (TIDAL_EXPECT_COMPILED=1 there).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import typing
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tidal
from tidal._core import futures, handles, native, tasks
from tidal._core import loop as core_loop

SOURCE_TREE = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def tloop() -> Iterator[Any]:
    """A tidal loop (these tests are about tidal's builds, not asyncio's)."""
    lp = tidal.new_event_loop()
    yield lp
    lp.close()


def test_compiled_flag_says_which_build_runs() -> None:
    assert isinstance(tidal.compiled, bool)
    assert tidal.compiled == native.is_compiled(futures) == native.is_compiled(tasks)
    expected = os.environ.get("TIDAL_EXPECT_COMPILED")
    if expected is not None:
        assert tidal.compiled is (expected == "1")
        if tidal.compiled:
            # The installed wheel, not the checkout.
            assert not Path(tidal.__file__).resolve().is_relative_to(SOURCE_TREE)


def test_version_names_the_build() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "--version"], capture_output=True, text=True, check=True
    )
    build = "compiled" if tidal.compiled else "pure Python"
    assert done.stdout.startswith(f"tidal {tidal.__version__}, {build} (Python ")


def test_public_classes_are_the_ones_the_core_uses() -> None:
    assert futures._Future is tidal.Future and tasks._Task is tidal.Task
    assert handles._Handle is tidal.Handle and handles._TimerHandle is tidal.TimerHandle
    assert issubclass(tidal.Task, tidal.Future)
    assert issubclass(tidal.TimerHandle, tidal.Handle)
    if tidal.compiled:
        # The native classes themselves, on an interpreted base that gives
        # them weak references (native.NativeBase): no subclass in between.
        assert tidal.Future.__mro__ == (tidal.Future, native.NativeBase, object)
        assert tidal.TimerHandle.__mro__[1:] == (tidal.Handle, native.NativeBase, object)
        assert not hasattr(tidal.Future.cancel, "__code__")
        assert not hasattr(tidal.Handle.cancel, "__code__")
    else:  # one class each, on object: the slotted layout is unchanged
        assert tidal.Future.__mro__ == (tidal.Future, object)
        assert native.NativeBase is object


def test_weak_references_to_core_objects(tloop: Any) -> None:
    dead: list[str] = []

    async def main() -> None:
        objs = {
            "future": tloop.create_future(),
            "task": asyncio.current_task(),
            "handle": tloop.call_soon(print),
            "timer": tloop.call_later(10, print),
        }
        objs["handle"].cancel()
        objs["timer"].cancel()
        refs = [weakref.ref(o, lambda _r, n=name: dead.append(n)) for name, o in objs.items()]
        assert all(r() is not None for r in refs)
        del objs["future"], objs["handle"], objs["timer"]
        gc.collect()

    tloop.run_until_complete(main())
    # The cancelled handles stay queued until the loop drops them; the future dies at once.
    assert "future" in dead
    ref = weakref.ref(tloop)
    assert ref() is tloop


def test_weak_references_die_with_their_object_without_a_collection(tloop: Any) -> None:
    # Freed by its reference count, not by the collector: the compiled
    # deallocator must clear the references itself (setup.py adds the call).
    dead: list[str] = []
    tracked: weakref.WeakSet[Any] = weakref.WeakSet()

    class MyFuture(tidal.Future):
        pass

    async def child() -> None:
        pass

    gc.disable()
    try:
        objs: dict[str, Any] = {
            "future": tloop.create_future(),
            "subclass": MyFuture(loop=tloop),
            "handle": tidal.Handle(print, (), tloop),
            "timer": tidal.TimerHandle(1.0, print, (), tloop),
        }
        refs = [weakref.ref(o, lambda _r, n=name: dead.append(n)) for name, o in objs.items()]
        objs.clear()
        assert sorted(dead) == ["future", "handle", "subclass", "timer"]
        assert all(r() is None for r in refs)
        task = tloop.create_task(child())
        tracked.add(task)
        tloop.run_until_complete(task)
        del task
        assert len(tracked) == 0
    finally:
        gc.enable()


def test_asyncio_sees_futures_and_tasks(tloop: Any) -> None:
    async def main() -> None:
        fut = tloop.create_future()
        assert isinstance(fut, asyncio.Future) and isinstance(fut, tidal.Future)
        task = asyncio.current_task()
        assert isinstance(task, asyncio.Task) and isinstance(task, tidal.Future)
        assert type(fut) is tidal.Future and type(task) is tidal.Task

    tloop.run_until_complete(main())
    for cls in (tidal.Future, tidal.Task):
        assert typing.get_origin(cls[int]) is cls and typing.get_args(cls[int]) == (int,)


def test_subclasses_of_future_task_and_loop() -> None:
    class MyFuture(tidal.Future):
        pass

    class MyTask(tidal.Task):  # type: ignore[type-arg]
        def cancel(self, msg: Any = None) -> bool:
            self.cancel_calls = getattr(self, "cancel_calls", 0) + 1
            return super().cancel(msg)

    class MyLoop(tidal.EventLoop):
        pass

    lp = MyLoop()
    try:
        lp.set_task_factory(lambda lp, coro, **kw: MyTask(coro, loop=lp, **kw))

        async def child() -> None:
            await asyncio.sleep(10)

        async def main() -> str:
            fut = MyFuture(loop=lp)
            lp.call_soon(fut.set_result, "done")
            task = lp.create_task(child())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert isinstance(task, MyTask) and task.cancel_calls == 1
            assert not isinstance(fut, asyncio.Future)  # a subclass reports itself
            return str(await fut)

        assert lp.run_until_complete(main()) == "done"
    finally:
        lp.close()


def test_patching_a_loop_instance_method_reaches_the_core(tloop: Any) -> None:
    from unittest import mock

    async def main() -> None:
        fut = tloop.create_future()
        fut.add_done_callback(lambda f: None)
        with mock.patch.object(tloop, "call_soon", wraps=tloop.call_soon) as spy:
            fut.set_result(1)
        assert spy.call_count == 1

    tloop.run_until_complete(main())


def test_exception_read_once_is_not_reported(tloop: Any) -> None:
    reports: list[str] = []

    def handler(lp: Any, ctx: dict[str, Any]) -> None:
        reports.append(ctx["message"])
        ctx["future"].exception()  # reading it in the handler must not report again

    tloop.set_exception_handler(handler)
    fut = tloop.create_future()
    fut.set_exception(ValueError("read"))
    assert isinstance(fut.exception(), ValueError)
    del fut
    gc.collect()
    assert reports == []
    fut = tloop.create_future()
    fut.set_exception(ValueError("dropped"))
    del fut
    gc.collect()
    assert reports == ["Future exception was never retrieved"]


def test_public_class_is_the_class_itself_when_it_has_weakrefs() -> None:
    class Slotted:
        __slots__ = ("__weakref__",)

    assert native.public_class(Slotted) is Slotted
    assert native.is_compiled(core_loop) in (True, False)

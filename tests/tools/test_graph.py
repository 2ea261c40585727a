"""Call graphs (Python 3.14's asyncio graph API): who awaits whom, and each stack.

Every shape test runs three ways: tidal's API on tidal's loop, asyncio's API
on tidal's loop, and asyncio's API on asyncio's loop.  asyncio 3.11-3.13 has
no graph API, but tidal's derives "awaited by" from the futures' callbacks,
which it reads on asyncio's objects too: the three shapes must agree, and
they must be the ones 3.14's own tests expect (its test_graph.py).
"""

from __future__ import annotations

import asyncio
import gc
import io
import re
import sys
import types
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import tidal
from tidal._tools.graph import frame_kind

HERE = __file__
_SOURCE = Path(HERE).read_text().splitlines()


def line(marker: str) -> int:
    """The line number of the line of this file ending with ``# L:<marker>``."""
    tag = f"# L:{marker}"
    hits = [n for n, text in enumerate(_SOURCE, 1) if text.rstrip().endswith(tag)]
    assert len(hits) == 1, marker
    return hits[0]


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


def _run_dropin(coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
        return runner.run(coro)


MODES = {
    "tidal": (tidal, tidal.run),
    "dropin": (asyncio, _run_dropin),
    "asyncio": (asyncio, asyncio.run),
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> tuple[Any, Runner]:
    """(API module, runner): tidal on tidal, asyncio on tidal, asyncio on asyncio."""
    return MODES[request.param]


def shape(graph: Any) -> list[Any]:
    """3.14's test_graph.py summary of a graph: [task, [frames], [awaiters...]]."""
    fut = graph.future
    if isinstance(fut, (tidal.Task, asyncio.Task)):
        name = fut.get_name()
        label = "T<anon>" if "-" in name else f"T<{name}>"
    else:
        label = "F"
    prefix = {"": "s", "async": "a", "async generator": "ag", "generator": "g"}
    stack = [f"{prefix[frame_kind(e.frame)]} {e.frame.f_code.co_name}" for e in graph.call_stack]
    return [label, stack, sorted((shape(g) for g in graph.awaited_by), key=lambda s: s[0])]


def capture(fut: Any = None, depth: int = 1) -> tuple[list[Any], str]:
    """3.14's capture_test_stack(): the shape and the printed text, from the same frame.

    (3.14.0 passes ``depth + 1`` to print_call_graph() because it showed its
    own frame, gh-156327; tidal has the fix.)
    """
    buf = io.StringIO()
    tidal.print_call_graph(fut, file=buf, depth=depth)
    graph = tidal.capture_call_graph(fut, depth=depth)
    return shape(graph), buf.getvalue()


# -- the shapes of 3.14's test_graph.py -------------------------------------------


def test_taskgroup_and_await_task(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    def c5() -> None:
        seen.append(capture(depth=2))

    async def c4() -> None:
        await aio.sleep(0)
        c5()

    async def c3() -> None:
        await c4()

    async def c2() -> None:
        await c3()

    async def c1(task: Any) -> None:
        await task

    async def main() -> None:
        async with aio.TaskGroup() as tg:
            task = tg.create_task(c2(), name="c2_root")
            tg.create_task(c1(task), name="sub_main_1")
            tg.create_task(c1(task), name="sub_main_2")

    run(main())
    parent = ["T<anon>", ["a __aexit__", "a main"], []]
    assert seen[0][0] == [
        "T<c2_root>",
        ["s c5", "a c4", "a c3", "a c2"],
        [parent, ["T<sub_main_1>", ["a c1"], [parent]], ["T<sub_main_2>", ["a c1"], [parent]]],
    ]
    assert " async TaskGroup.__aexit__()" in seen[0][1]


def test_async_generator(mode: tuple[Any, Runner]) -> None:
    _, run = mode
    seen: list[Any] = []

    async def nested() -> None:
        seen.append(capture())

    async def gen() -> Any:
        for num in range(2):
            yield num
            if num == 1:
                await nested()

    async def main() -> None:
        async for _ in gen():
            pass

    run(main())
    assert seen[0][0] == ["T<anon>", ["s capture", "a nested", "ag gen", "a main"], []]
    assert "async generator test_async_generator.<locals>.gen()" in seen[0][1]


def test_gather(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    async def deep() -> None:
        await aio.sleep(0)
        seen.append(capture())

    async def c1() -> None:
        await aio.sleep(0)
        await deep()

    async def c2() -> None:
        await aio.sleep(0)

    async def main() -> None:
        await aio.gather(c1(), c2())

    run(main())
    assert seen[0][0] == ["T<anon>", ["s capture", "a deep", "a c1"], [["T<anon>", ["a main"], []]]]


def test_shield(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    async def deep() -> None:
        await aio.sleep(0)
        seen.append(capture())

    async def c1() -> None:
        async with aio.timeout(1):
            await aio.sleep(0)
            await deep()

    async def main() -> None:
        await aio.shield(c1())

    run(main())
    assert seen[0][0] == ["T<anon>", ["s capture", "a deep", "a c1"], [["T<anon>", ["a main"], []]]]


def test_wait(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    async def inner() -> None:
        await aio.sleep(0)
        seen.append(capture())

    async def c1() -> None:
        await aio.sleep(0)
        await inner()

    async def c2() -> None:
        for _ in range(3):
            await aio.sleep(0)

    async def main() -> None:
        t1 = aio.create_task(c1())
        t2 = aio.create_task(c2())
        pending = {t1, t2}
        while pending:
            _, pending = await aio.wait(pending)

    run(main())
    assert seen[0][0] == [
        "T<anon>",
        ["s capture", "a inner", "a c1"],
        [["T<anon>", ["a _wait", "a wait", "a main"], []]],
    ]


def test_wait_for(mode: tuple[Any, Runner]) -> None:
    # 3.11: the awaitable runs as a task of its own, awaited through wait_for's
    # waiter; 3.12+: it runs inside the caller's task.
    aio, run = mode
    seen: list[Any] = []

    async def inner() -> None:
        await aio.sleep(0)
        seen.append(capture())

    async def main() -> None:
        await aio.wait_for(inner(), 5)

    run(main())
    if sys.version_info >= (3, 12):
        assert seen[0][0] == ["T<anon>", ["s capture", "a inner", "a wait_for", "a main"], []]
    else:
        assert seen[0][0] == [
            "T<anon>", ["s capture", "a inner"], [["T<anon>", ["a wait_for", "a main"], []]]
        ]


def test_as_completed(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    async def inner() -> None:
        await aio.sleep(0)
        seen.append(capture())

    async def main() -> None:
        for next_done in aio.as_completed([inner()]):
            await next_done

    run(main())
    getter = "a get"  # the waiting task is in as_completed's queue get()
    assert seen[0][0][:2] == ["T<anon>", ["s capture", "a inner"]]
    [[label, stack, _]] = seen[0][0][2]
    assert label == "T<anon>"
    assert stack[0] == getter and stack[-1] == "a main"


def test_await_task(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    async def inner() -> None:
        await aio.sleep(0)
        seen.append(capture())

    async def c1() -> None:
        await inner()

    async def c2() -> None:
        await aio.create_task(c1(), name="there there")

    async def main() -> None:
        await c2()

    run(main())
    assert seen[0][0] == [
        "T<there there>", ["s capture", "a inner", "a c1"], [["T<anon>", ["a c2", "a main"], []]]
    ]


def test_future_awaited_by_two_tasks(mode: tuple[Any, Runner]) -> None:
    aio, run = mode
    seen: list[Any] = []

    async def a2(fut: Any) -> None:
        await fut

    async def a1(fut: Any) -> None:
        await a2(fut)

    async def b1(fut: Any) -> None:
        await fut

    async def main() -> None:
        fut = aio.get_running_loop().create_future()
        async with aio.TaskGroup() as g:
            g.create_task(a1(fut), name="task A")
            g.create_task(b1(fut), name="task B")
            for _ in range(5):
                await aio.sleep(0)
            seen.append(capture(fut))
            fut.set_result(None)

    run(main())
    parent = ["T<anon>", ["a main"], []]  # running: its stack ends where it runs
    assert seen[0][0] == [
        "F", [], [["T<task A>", ["a a2", "a a1"], [parent]], ["T<task B>", ["a b1"], [parent]]]
    ]
    assert seen[0][1].startswith("* Future(id=")


def test_parked_task_stack_goes_through_generators(mode: tuple[Any, Runner]) -> None:
    # A generator-based coroutine (yield from) and an async generator's
    # __anext__ wrapper hide what they wait on; the stack goes on through them.
    aio, run = mode
    seen: list[Any] = []

    async def deep(fut: Any) -> None:
        await fut

    async def rows(fut: Any) -> Any:
        await deep(fut)
        yield 1

    @types.coroutine
    def legacy(fut: Any) -> Any:
        return (yield from deep(fut))  # type: ignore[misc]

    @types.coroutine
    def wrapped(fut: Any) -> Any:
        return (yield from deep(fut).__await__())

    async def consumer(fut: Any) -> None:
        async for _ in rows(fut):
            pass

    async def old_style(fut: Any) -> None:
        await legacy(fut)

    async def through_wrapper(fut: Any) -> None:
        await wrapped(fut)

    async def main() -> None:
        fut = aio.get_running_loop().create_future()
        one = aio.create_task(consumer(fut), name="agen")
        two = aio.create_task(old_style(fut), name="legacy")
        three = aio.create_task(through_wrapper(fut), name="wrapper")
        await aio.sleep(0)
        for task in (one, two, three):
            seen.append(shape(tidal.capture_call_graph(task)))
        fut.set_result(None)
        await aio.gather(one, two, three)

    run(main())
    assert seen[0] == ["T<agen>", ["a deep", "ag rows", "a consumer"], []]
    assert seen[1] == ["T<legacy>", ["a deep", "g legacy", "a old_style"], []]
    assert seen[2] == ["T<wrapper>", ["a deep", "g wrapped", "a through_wrapper"], []]


# -- exact output -----------------------------------------------------------------


async def leaf(fut: Any) -> None:
    await fut  # L:leaf


async def middle(fut: Any) -> None:
    await leaf(fut)  # L:middle


async def awaiter(task: Any) -> None:
    await task  # L:awaiter


async def reporter(buf: io.StringIO, aio: Any) -> None:
    await aio.sleep(0)  # let the other task start awaiting this one
    tidal.print_call_graph(file=buf)  # L:reporter


def test_exact_text_of_a_parked_tree(mode: tuple[Any, Runner]) -> None:
    aio, run = mode

    async def main() -> tuple[str, str]:
        fut = aio.get_running_loop().create_future()
        a = aio.create_task(middle(fut), name="A")
        b = aio.create_task(awaiter(a), name="B")
        await aio.sleep(0)
        text = tidal.format_call_graph(fut)
        expected = "\n".join([
            f"* Future(id={id(fut):#x})",
            "  + Awaited by:",
            f"    * Task(name='A', id={id(a):#x})",
            "      + Call stack:",
            f"      |   File {HERE!r}, line {line('leaf')}, in async leaf()",
            f"      |   File {HERE!r}, line {line('middle')}, in async middle()",
            "      + Awaited by:",
            f"        * Task(name='B', id={id(b):#x})",
            "          + Call stack:",
            f"          |   File {HERE!r}, line {line('awaiter')}, in async awaiter()",
        ])
        fut.set_result(None)
        await b
        return text, expected

    text, expected = run(main())
    assert text == expected


def test_exact_text_of_the_current_task(mode: tuple[Any, Runner]) -> None:
    aio, run = mode

    async def main() -> tuple[str, str]:
        buf = io.StringIO()
        task = aio.create_task(reporter(buf, aio), name="reporter")
        waiting = aio.create_task(awaiter(task), name="waiting")
        await waiting  # L:main
        me = aio.current_task()
        main = "test_exact_text_of_the_current_task.<locals>.main"
        expected = "\n".join([
            f"* Task(name='reporter', id={id(task):#x})",
            "  + Call stack:",
            f"  |   File {HERE!r}, line {line('reporter')}, in async reporter()",
            "  + Awaited by:",
            f"    * Task(name='waiting', id={id(waiting):#x})",
            "      + Call stack:",
            f"      |   File {HERE!r}, line {line('awaiter')}, in async awaiter()",
            "      + Awaited by:",
            f"        * Task(name={me.get_name()!r}, id={id(me):#x})",
            "          + Call stack:",
            f"          |   File {HERE!r}, line {line('main')}, in async {main}()",
        ]) + "\n"
        return buf.getvalue(), expected

    text, expected = run(main())
    assert text == expected


def test_limit_and_depth() -> None:
    seen: dict[str, Any] = {}

    def sync_helper() -> None:
        for limit in (None, 1, -1, 2, -2, 0):
            graph = tidal.capture_call_graph(limit=limit)
            seen[f"current {limit}"] = shape(graph)[1]
        seen["depth 2"] = shape(tidal.capture_call_graph(depth=2))[1]

    async def inner() -> None:
        sync_helper()

    async def outer() -> None:
        await inner()

    async def main() -> None:
        task = tidal.create_task(outer(), name="t")
        await task
        fut = tidal.get_running_loop().create_future()
        parked = tidal.create_task(middle(fut), name="p")
        await tidal.sleep(0)
        for limit in (None, 1, -1, 0):
            seen[f"parked {limit}"] = shape(tidal.capture_call_graph(parked, limit=limit))[1]
        fut.set_result(None)
        await parked

    tidal.run(main())
    assert seen["current None"] == ["s sync_helper", "a inner", "a outer"]
    assert seen["current 1"] == ["a outer"]  # positive: the outermost entries
    assert seen["current -1"] == ["s sync_helper"]  # negative: the innermost
    assert seen["current 2"] == ["a inner", "a outer"]
    assert seen["current -2"] == ["s sync_helper", "a inner"]
    assert seen["current 0"] == []
    assert seen["depth 2"] == ["a inner", "a outer"]
    assert seen["parked None"] == ["a leaf", "a middle"]
    assert seen["parked 1"] == ["a middle"]
    assert seen["parked -1"] == ["a leaf"]
    assert seen["parked 0"] == []


def test_no_current_task_and_bad_arguments() -> None:
    with pytest.raises(
        RuntimeError,
        match=r"^capture_call_graph\(\) is called outside of a running event loop and no "
              r"\*future\* to introspect was provided$",
    ):
        tidal.capture_call_graph()
    bad = object()
    with pytest.raises(TypeError) as err:
        tidal.capture_call_graph(bad)
    assert str(err.value) == f"{bad!r} object does not appear to be compatible with asyncio.Future"
    seen: list[Any] = []

    async def main() -> None:
        loop = tidal.get_running_loop()
        done = loop.create_future()

        def callback() -> None:  # a callback runs outside any task
            seen.append(tidal.capture_call_graph())
            seen.append(tidal.format_call_graph())
            done.set_result(None)

        loop.call_soon(callback)
        await done

    tidal.run(main())
    assert seen == [None, ""]
    # A future that is not the current task is captured outside a loop too.
    loop = tidal.new_event_loop()
    try:
        fut = loop.create_future()
        graph = tidal.capture_call_graph(fut)
        assert graph is not None
        assert (graph.future, graph.call_stack, graph.awaited_by) == (fut, (), ())
    finally:
        loop.close()


def test_explicit_links_are_weak() -> None:
    loop = tidal.new_event_loop()
    try:
        fut = loop.create_future()
        other = loop.create_future()
        tidal.future_add_to_awaited_by(fut, other)
        tidal.future_add_to_awaited_by(fut, other)  # once only
        tidal.future_add_to_awaited_by(fut, "not a future")  # no effect, as in 3.14
        graph = tidal.capture_call_graph(fut)
        assert graph is not None
        assert [g.future for g in graph.awaited_by] == [other]
        text = tidal.format_call_graph(fut)
        assert text == (
            f"* Future(id={id(fut):#x})\n  + Awaited by:\n    * Future(id={id(other):#x})"
        )
        del graph
        tidal.future_discard_from_awaited_by(fut, other)
        graph = tidal.capture_call_graph(fut)
        assert graph is not None and graph.awaited_by == ()
        tidal.future_add_to_awaited_by(fut, other)
        del other
        gc.collect()
        graph = tidal.capture_call_graph(fut)
        assert graph is not None and graph.awaited_by == ()
    finally:
        loop.close()


def test_await_cycle_is_cut() -> None:
    # a awaits b, and b is recorded as awaiting a: 3.14 would recurse forever.
    seen: list[str] = []

    async def wait_on(box: list[Any]) -> None:
        await box[0]

    async def main() -> None:
        fut = tidal.get_running_loop().create_future()
        b = tidal.create_task(wait_on([fut]), name="b")
        a = tidal.create_task(wait_on([b]), name="a")
        await tidal.sleep(0)
        tidal.future_add_to_awaited_by(a, b)
        seen.append(tidal.format_call_graph(a, limit=0))
        tidal.future_discard_from_awaited_by(a, b)
        fut.set_result(None)
        await a

    tidal.run(main())
    assert re.findall(r"name='(\w)'", seen[0]) == ["a", "b", "a"]


def test_format_matches_the_graph_objects() -> None:
    # The public dataclasses are frozen, slotted and compare by value.
    entry = tidal.FrameCallGraphEntry(sys._getframe())
    graph = tidal.FutureCallGraph(None, (entry,), ())
    assert graph == tidal.FutureCallGraph(None, (tidal.FrameCallGraphEntry(entry.frame),), ())
    with pytest.raises(AttributeError):
        graph.future = 1  # type: ignore[misc]
    assert not hasattr(graph, "__dict__")

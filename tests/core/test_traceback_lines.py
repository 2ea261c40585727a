"""What tidal's tracebacks print: no lint comments, and no more frames than asyncio.

The static test reads every module of ``src/tidal``: a line of tidal's source
is printed in a traceback when it is a frame's current line while an
exception passes, so no such line may carry a ``# type: ignore``, ``# noqa``
or ``# pragma`` comment.  The dynamic tests run the same program on asyncio
(the oracle) and on tidal, both through tidal's own API and through asyncio's
API on tidal's loop, and compare the frames of the exception caught.
"""

from __future__ import annotations

import ast
import asyncio
import io
import os
import re
import socket
import tokenize
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import tidal

SRC = Path(tidal.__file__).resolve().parent
_LINT = re.compile(r"#\s*(type:\s*ignore|noqa|pragma)", re.IGNORECASE)


# -- static: no lint comment on a printable line ----------------------------------


def _lint_comments(source: str) -> dict[int, str]:
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and _LINT.search(tok.string):
            found[tok.start[0]] = tok.string
    return found


def _span(node: Any, last: Any = None) -> range:
    end = (last or node).end_lineno or node.lineno
    return range(node.lineno, end + 1)


def _is_generator(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    # A yield of the function itself, not of a nested function or class.
    todo: list[ast.AST] = list(func.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    return False


def printable_lines(tree: ast.AST) -> set[int]:
    """Lines that can be a frame's current line while an exception passes.

    Lines with a call, await, raise, yield, ``with`` or ``for`` header.  An
    instruction's whole span counts: 3.13 prints every line of a multi-line
    call.  A coroutine's or generator's first line (its first decorator, else
    its ``def``) is printed when an exception is thrown into it before it
    starts, as when a task is cancelled before its first step; a plain
    function's ``def`` line never is.
    """
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call | ast.Await | ast.Raise | ast.Yield | ast.YieldFrom):
            lines.update(_span(node))
        elif isinstance(node, ast.With | ast.AsyncWith):
            last = node.items[-1]
            lines.update(_span(node, last.optional_vars or last.context_expr))
        elif isinstance(node, ast.For | ast.AsyncFor):
            lines.update(_span(node, node.iter))
        elif isinstance(node, ast.comprehension):
            lines.update(_span(node.target, node.iter))
        elif isinstance(node, ast.AsyncFunctionDef) or (
            isinstance(node, ast.FunctionDef) and _is_generator(node)
        ):
            first = node.decorator_list[0] if node.decorator_list else node
            lines.add(first.lineno)
    return lines


def lint_on_printable_lines() -> list[tuple[str, int, str]]:
    """``(file, line, text)`` for each lint comment on a printable line of src/tidal."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        comments = _lint_comments(source)
        if not comments:
            continue
        text = source.splitlines()
        rel = path.relative_to(SRC.parent).as_posix()
        for lineno in sorted(printable_lines(ast.parse(source)).intersection(comments)):
            bad.append((rel, lineno, text[lineno - 1].strip()))
    return bad


def test_scanner_sees_each_kind_of_printable_line() -> None:
    source = (
        "@deco\n"  # 1: a coroutine's first line
        "async def f(\n"  # 2
        "    a,\n"  # 3
        "):\n"  # 4
        "    x = g(\n"  # 5
        "        1,\n"  # 6
        "    )\n"  # 7
        "    y = 1\n"  # 8
        "    async with h() as c:\n"  # 9
        "        pass\n"  # 10
        "    for i in it:\n"  # 11
        "        pass\n"  # 12
        "    z = [k for k in it]\n"  # 13
        "    await w\n"  # 14
        "    raise E\n"  # 15
        "def plain(a):\n"  # 16: not a generator: its def line never shows
        "    return a\n"  # 17
        "def gen():\n"  # 18
        "    def inner():\n"  # 19: plain, though its parent yields
        "        return 1\n"  # 20
        "    yield 1\n"  # 21
    )
    expected = {1, 5, 6, 7, 9, 11, 13, 14, 15, 18, 21}
    assert printable_lines(ast.parse(source)) == expected


def test_no_lint_comment_on_a_printable_line() -> None:
    found = lint_on_printable_lines()
    bad = [f"{file}:{line}: {text}" for file, line, text in found]
    assert not bad, "lint comments on lines a traceback can print:\n" + "\n".join(bad)


# -- dynamic: as many frames as asyncio, user frames in the same places ----------

_HERE = os.path.basename(__file__)


def _leaf_factory(aio: ModuleType) -> Callable[[], Coroutine[Any, Any, None]]:
    async def leaf() -> None:
        await aio.sleep(0)
        raise ValueError("boom")

    return leaf


def _programs(aio: ModuleType) -> dict[str, Callable[[], Coroutine[Any, Any, Any]]]:
    """Each program returns the exceptions it caught, by name."""
    leaf = _leaf_factory(aio)

    async def taskgroup() -> dict[str, BaseException]:
        try:
            async with aio.TaskGroup() as group:
                group.create_task(leaf())
                await aio.sleep(1)
        except ExceptionGroup as eg:
            return {"group": eg, "sub": eg.exceptions[0]}
        raise AssertionError("no ExceptionGroup")

    async def timeout() -> dict[str, BaseException | None]:
        try:
            async with aio.timeout(0.001):
                await aio.sleep(1)
        except TimeoutError as exc:
            return {"exc": exc, "context": exc.__context__}
        raise AssertionError("no TimeoutError")

    async def readexactly() -> dict[str, BaseException]:
        reader = aio.StreamReader()

        async def feed() -> None:
            await aio.sleep(0)
            reader.feed_data(b"ab")
            reader.feed_eof()

        feeder = aio.ensure_future(feed())
        try:
            await reader.readexactly(5)
        except aio.IncompleteReadError as exc:
            await feeder
            return {"exc": exc}
        raise AssertionError("no IncompleteReadError")

    async def readexactly_socket() -> dict[str, BaseException]:
        ours, peer = socket.socketpair()
        reader, writer = await aio.open_connection(sock=ours)
        with peer:
            peer.sendall(b"ab")
        try:
            await reader.readexactly(5)
        except aio.IncompleteReadError as exc:
            return {"exc": exc}
        finally:
            writer.close()
            await writer.wait_closed()
        raise AssertionError("no IncompleteReadError")

    async def cancelled_getter() -> Any:
        # A task parked in Queue.get(), cancelled (not yet stepped again).
        queue = aio.Queue()

        async def getter() -> Any:
            return await queue.get()

        task = aio.ensure_future(getter())
        await aio.sleep(0)
        task.cancel()
        return task

    async def queue_get_cancelled() -> dict[str, BaseException]:
        task = await cancelled_getter()
        try:
            await task
        except aio.CancelledError as exc:
            return {"exc": exc}
        raise AssertionError("no CancelledError")

    async def shield() -> dict[str, BaseException]:
        task = aio.ensure_future(leaf())
        try:
            await aio.shield(task)
        except ValueError as exc:
            return {"exc": exc}
        raise AssertionError("no ValueError")

    async def as_completed() -> dict[str, BaseException]:
        try:
            for next_done in aio.as_completed([leaf()]):
                await next_done
        except ValueError as exc:
            return {"exc": exc}
        raise AssertionError("no ValueError")

    async def lock_cancelled() -> dict[str, BaseException]:
        lock = aio.Lock()
        await lock.acquire()

        async def taker() -> None:
            async with lock:
                pass

        task = aio.ensure_future(taker())
        await aio.sleep(0)
        task.cancel()
        try:
            await task
        except aio.CancelledError as exc:
            return {"exc": exc}
        raise AssertionError("no CancelledError")

    async def cancelled_task_result() -> dict[str, BaseException]:
        # The task's own CancelledError, handed over by result() after the
        # task is done (tidal strips its traceback only then).
        task = await cancelled_getter()
        await aio.wait([task])
        try:
            task.result()
        except aio.CancelledError as exc:
            return {"exc": exc}
        raise AssertionError("no CancelledError")

    async def connection_refused() -> dict[str, BaseException]:
        with socket.socket() as bound:  # bound, not listening: connecting is refused
            bound.bind(("127.0.0.1", 0))
            try:
                await aio.open_connection(*bound.getsockname())
            except ConnectionRefusedError as exc:
                return {"exc": exc}
        raise AssertionError("no ConnectionRefusedError")

    async def await_failed_task() -> dict[str, BaseException]:
        task = aio.ensure_future(leaf())
        await aio.wait([task])
        try:
            await task
        except ValueError as exc:
            return {"exc": exc}
        raise AssertionError("no ValueError")

    async def cancelled_before_start() -> dict[str, BaseException]:
        task = aio.ensure_future(aio.sleep(1))
        task.cancel()
        try:
            await task
        except aio.CancelledError as exc:
            return {"exc": exc}
        raise AssertionError("no CancelledError")

    return {
        "cancelled_before_start": cancelled_before_start,
        "taskgroup": taskgroup,
        "timeout": timeout,
        "readexactly": readexactly,
        "readexactly_socket": readexactly_socket,
        "queue_get_cancelled": queue_get_cancelled,
        "shield": shield,
        "as_completed": as_completed,
        "lock_cancelled": lock_cancelled,
        "cancelled_task_result": cancelled_task_result,
        "connection_refused": connection_refused,
        "await_failed_task": await_failed_task,
    }


Frame = tuple[str, str, str]  # (file name, function, full path)


def _frames_of(exc: BaseException | None) -> list[Frame]:
    assert exc is not None
    return [
        (os.path.basename(f.filename), f.name, f.filename)
        for f in traceback.extract_tb(exc.__traceback__)
    ]


def _caught(impl: str, way: str, shape: str) -> dict[str, list[Frame]]:
    aio = tidal if impl == "tidal" and way == "own-api" else asyncio
    program = _programs(aio)[shape]()
    if impl == "asyncio":
        caught = asyncio.run(program)
    elif way == "own-api":
        caught = tidal.run(program)
    else:
        with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
            caught = runner.run(program)
    return {key: _frames_of(exc) for key, exc in caught.items()}


def _is_future_frame(frame: Frame) -> bool:
    # tidal's Future.result / Future.__await__ (asyncio's are C); compiled,
    # __await__'s iterator's __next__, and each synthetic frame names its
    # source relative to the build tree.
    return frame[1] in ("result", "__await__", "__next__") and (
        frame[2] in _FUTURE_FILES or frame[2].endswith("tidal/_core/futures.py")
    )


_FUTURE_FILES = {str(SRC / "_core" / "futures.py"), str(SRC / "_core" / "interpreted.py")}


def _pattern(frames: list[Frame]) -> list[str]:
    # The user's frames by name; each run of library frames as one "*".
    out: list[str] = []
    for file, name, _ in frames:
        item = name if file == _HERE else "*"
        if not (item == "*" and out and out[-1] == "*"):
            out.append(item)
    return out


def _show(frames: list[Frame]) -> str:
    return " > ".join(name if file == _HERE else f"[{file}:{name}]" for file, name, _ in frames)


#: Frames tidal's pure-Python Future may add where asyncio's C Future adds
#: none, by (shape, way): asyncio's own as_completed calls result() on
#: tidal's task, and awaiting a task that is already done runs
#: Future.__await__ and result() (at most those two frames); a direct call of
#: a done task's result() shows that method's frame.
_FUTURE_FRAMES_ALLOWED = {
    ("cancelled_task_result", "own-api"): 1,
    ("cancelled_task_result", "asyncio-api"): 1,
    ("as_completed", "asyncio-api"): 1,
    ("await_failed_task", "own-api"): 2,
    ("await_failed_task", "asyncio-api"): 2,
}

_CASES = [
    ("taskgroup", "group"),
    ("taskgroup", "sub"),
    ("timeout", "exc"),
    ("timeout", "context"),
    ("readexactly", "exc"),
    ("readexactly_socket", "exc"),
    ("queue_get_cancelled", "exc"),
    ("shield", "exc"),
    ("as_completed", "exc"),
    ("lock_cancelled", "exc"),
    ("cancelled_task_result", "exc"),
    ("connection_refused", "exc"),
    ("await_failed_task", "exc"),
    ("cancelled_before_start", "exc"),
]


@pytest.mark.parametrize("way", ["own-api", "asyncio-api"])
@pytest.mark.parametrize(("shape", "key"), _CASES)
def test_traceback_shape_matches_asyncio(shape: str, key: str, way: str) -> None:
    expected = _caught("asyncio", way, shape)[key]
    got = _caught("tidal", way, shape)[key]
    extra = [frame for frame in got if _is_future_frame(frame)]
    allowed = _FUTURE_FRAMES_ALLOWED.get((shape, way), 0)
    detail = f"\n tidal:   {_show(got)}\n asyncio: {_show(expected)}"
    assert len(extra) <= allowed, detail
    trimmed = [frame for frame in got if not _is_future_frame(frame)]
    assert len(trimmed) <= len(expected), detail
    assert _pattern(trimmed) == _pattern(expected), detail


def test_cancelled_before_start_prints_the_coroutines_first_line() -> None:
    # Why the static test counts a coroutine's def line: asyncio prints it too.
    for impl in ("asyncio", "tidal"):
        aio = tidal if impl == "tidal" else asyncio
        program = _programs(aio)["cancelled_before_start"]()
        caught = asyncio.run(program) if impl == "asyncio" else tidal.run(program)
        lines = [f.line for f in traceback.extract_tb(caught["exc"].__traceback__)]
        assert any(line and line.startswith("async def sleep(") for line in lines), lines

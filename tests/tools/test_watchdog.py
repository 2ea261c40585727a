"""The blocking-call watchdog: a step that holds the loop is reported while it blocks."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tidal
from tidal._tools import watchdog
from tidal._tools.watchdog import BlockingReport, watch_blocking

SRC = str(Path(__file__).resolve().parents[2] / "src")
_SOURCE = Path(__file__).read_text().splitlines()


def line(marker: str) -> int:
    [number] = [n for n, text in enumerate(_SOURCE, 1) if text.endswith(f"# L:{marker}")]
    return number


@pytest.fixture(autouse=True)
def stopped() -> Iterator[None]:
    """Every test starts and ends with no watchdog."""
    watch_blocking(None)
    yield
    watch_blocking(None)
    assert watchdog._thread[0] is None


@pytest.fixture(params=["tidal", "asyncio"])
def run(request: pytest.FixtureRequest) -> Any:
    """Run a coroutine on tidal's loop, or on asyncio's (the watchdog watches both)."""
    return tidal.run if request.param == "tidal" else asyncio.run


class Reports:
    def __init__(self) -> None:
        self.seen: list[tuple[float, BlockingReport]] = []

    def __call__(self, report: BlockingReport) -> None:
        self.seen.append((time.monotonic(), report))


def render(seconds: float) -> None:
    time.sleep(seconds)  # L:render


def assert_callback_blocked(reports: Reports, seconds: float) -> None:
    # Two reports of a plain callback that blocked in render(seconds).
    first, last = [r for _, r in reports.seen]
    assert first.task is None and first.what.startswith("callback <Handle ")
    assert (first.stack[-1].name, first.stack[-1].lineno) == ("render", line("render"))
    assert last.ended and seconds - last.resolution <= last.held


async def blocking_step(seconds: float) -> tuple[float, float]:
    started = time.monotonic()
    render(seconds)  # L:step
    return started, time.monotonic()


def test_a_blocking_task_is_reported_while_it_blocks(run: Any, caplog: Any) -> None:
    reports = Reports()

    async def main() -> tuple[Any, tuple[float, float]]:
        watch_blocking(0.05, callback=reports)
        task = asyncio.ensure_future(blocking_step(0.4))
        task.set_name("blocker")
        span = await task
        await asyncio.sleep(0.05)  # the watchdog sees the step end at its next sample
        return task, span

    with caplog.at_level(logging.WARNING, logger="tidal"):
        task, (started, ended) = run(main())
    first, last = [r for _, r in reports.seen]
    at_first = reports.seen[0][0]
    assert at_first < ended - 0.1  # while it was still blocking
    assert not first.ended and first.task is task
    assert first.what.startswith("task 'blocker' <Task pending name='blocker'")
    assert 0.05 <= first.held <= at_first - started + first.resolution
    assert [(f.name, f.lineno) for f in first.stack][-2:] == [
        ("blocking_step", line("step")), ("render", line("render")),
    ]
    assert first.thread_id == __import__("threading").get_native_id()
    assert last.ended and last.task is task
    assert abs(last.held - (ended - started)) <= last.resolution + 0.01
    messages = [r.getMessage() for r in caplog.records if r.name == "tidal"]
    assert messages[0].startswith("task 'blocker' <Task pending")
    assert "has held the loop for" in messages[0] and "and is still running" in messages[0]
    assert f'line {line("render")}, in render\n    time.sleep(seconds)' in messages[0]
    assert re.search(r" held the loop for 0\.\d{3} s \(±0\.0\d\d\)$", messages[1])
    assert 0 < last.resolution < 0.05


def test_stopping_delivers_what_is_owed_and_nothing_later() -> None:
    # A step reported as blocking gets its end report before
    # watch_blocking(None) returns, and a sampler stopped while it slept never
    # reports into a setting made after it.
    first, second = Reports(), Reports()
    blocked = threading.Event()

    def report(r: BlockingReport) -> None:
        first(r)
        blocked.set()

    async def main() -> None:
        await asyncio.sleep(0)
        blocked.wait(5)

    watch_blocking(0.02, callback=report)
    tidal.run(main())
    watch_blocking(None)
    assert [r.ended for _, r in first.seen] == [False, True]
    watch_blocking(5.0, callback=second)
    tidal.run(asyncio.sleep(0.05))
    watch_blocking(None)
    assert second.seen == [] and len(first.seen) == 2


def test_a_blocking_callback_is_named(run: Any) -> None:
    reports = Reports()

    async def main() -> None:
        watch_blocking(0.05, callback=reports)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_soon(lambda: (render(0.3), done.set_result(None)))
        await done
        await asyncio.sleep(0.05)

    run(main())
    assert_callback_blocked(reports, 0.3)


def test_a_blocking_io_callback_is_a_step(run: Any) -> None:
    # A reader's callback runs from the ready queue, as any other handle.
    import socket

    reports = Reports()
    a, b = socket.socketpair()

    async def main() -> None:
        watch_blocking(0.05, callback=reports)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def on_readable() -> None:
            loop.remove_reader(a)
            render(0.3)
            done.set_result(a.recv(1))

        loop.add_reader(a, on_readable)
        b.send(b"x")
        assert await done == b"x"
        await asyncio.sleep(0.05)

    try:
        run(main())
    finally:
        a.close()
        b.close()
    assert_callback_blocked(reports, 0.3)


def test_a_blocking_step_is_found_while_tracing(tmp_path: Path) -> None:
    reports = Reports()

    async def main() -> None:
        watch_blocking(0.05, callback=reports)
        await blocking_step(0.3)
        await asyncio.sleep(0.05)

    tidal.start_trace(tmp_path / "trace.json")
    try:
        tidal.run(main())
    finally:
        tidal.stop_trace()
    first, last = [r for _, r in reports.seen]
    assert first.what.startswith("task ") and last.ended
    assert [f.name for f in first.stack][-2:] == ["blocking_step", "render"]


def test_short_steps_and_an_idle_loop_are_not_reported(run: Any) -> None:
    reports = Reports()

    async def main() -> None:
        # 0.25 s: on a loaded machine a 1 ms step can be descheduled for a while.
        watch_blocking(0.25, callback=reports)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # many short steps
            time.sleep(0.001)
            await asyncio.sleep(0)
        await asyncio.sleep(0.6)  # the loop waits in the poller: not a step

    run(main())
    assert reports.seen == []


def test_a_shorter_setting_applies_to_a_sleeping_sampler() -> None:
    # The sampler sleeps a quarter of the shortest threshold (at most 0.25 s):
    # a shorter setting made meanwhile must wake it, or a step ends unseen.
    reports = Reports()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        watch_blocking(5.0)
        time.sleep(0.05)  # the sampler is asleep for 5.0's interval now
        await asyncio.sleep(0)
        watch_blocking(0.05, loop=loop, callback=reports)
        render(0.2)
        await asyncio.sleep(0.05)
        watch_blocking(None, loop=loop)

    try:
        tidal.run(main())
    finally:
        watch_blocking(None)
    assert [r.ended for _, r in reports.seen] == [False, True]


def test_per_loop_setting_and_stopping() -> None:
    reports = Reports()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        watch_blocking(5.0)  # the default: nothing here blocks that long
        watch_blocking(0.05, loop=loop, callback=reports)
        assert watchdog.watching(loop) == 0.05 and watchdog.watching() == 5.0
        render(0.2)
        await asyncio.sleep(0.05)
        watch_blocking(None, loop=loop)  # back to the default for this loop
        assert watchdog.watching(loop) is None

    tidal.run(main())
    assert [r.ended for _, r in reports.seen] == [False, True]
    watch_blocking(None)
    assert watchdog._thread[0] is None  # nothing to watch: the thread has ended
    with pytest.raises(
        ValueError,
        match=r"^threshold must be a positive number of seconds, not 0$",
    ):
        watch_blocking(0)


def test_environment_variable_and_tidal_run_flag(tmp_path: Path) -> None:
    script = tmp_path / "blocks.py"
    script.write_text(
        "import time, tidal\n"
        "async def main():\n"
        "    time.sleep(0.3)\n"
        "tidal.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "TIDAL_WATCHDOG": "0.05"}
    quiet = {**env, "TIDAL_WATCHDOG": ""}
    for argv, environ in (
        ([str(script)], env),
        (["-m", "tidal", "run", str(script)], env),
        (["-m", "tidal", "run", "--watchdog=0.05", str(script)], quiet),
    ):
        done = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, env=environ, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "task 'Task-1' <Task pending name='Task-1'" in done.stderr
        assert f'File "{script}", line 3, in main\n    time.sleep(0.3)' in done.stderr
        assert "held the loop for 0." in done.stderr
    env["TIDAL_WATCHDOG"] = "no"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.stderr == ""
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "run", "--watchdog=soon", str(script)],
        capture_output=True, text=True, env=quiet, timeout=60,
    )
    assert done.returncode == 2
    assert "argument --watchdog: expected a positive number of seconds, got 'soon'" in done.stderr


def test_report_format() -> None:
    report = BlockingReport(None, None, "callback <Handle f()>", 1.5, True,
                            watchdog.traceback.StackSummary(), 1, 0.01)
    assert report.format() == "callback <Handle f()> held the loop for 1.500 s (±0.010)"
    report.ended = False
    assert report.format() == (
        "callback <Handle f()> has held the loop for 1.500 s and is still running, "
        "in C code (no Python frame above the loop's)"
    )
    assert repr(report) == "<BlockingReport running held=1.500 callback <Handle f()>>"


def test_the_loop_method() -> None:
    reports = Reports()

    async def main() -> None:
        loop = tidal.get_running_loop()
        loop.watch_blocking(0.05, callback=reports)
        assert watchdog.watching(loop) == 0.05 and watchdog.watching() is None
        render(0.2)
        await tidal.sleep(0.05)
        loop.watch_blocking(None)

    tidal.run(main())
    assert [r.ended for _, r in reports.seen] == [False, True]


def test_the_test_loop_waiting_in_real_time_is_not_a_step() -> None:
    # tidal.testing's loop polls through its own poller (a subclass's poll()).
    from tidal import testing

    reports = Reports()

    async def main() -> None:
        watch_blocking(0.05, callback=reports)
        await asyncio.sleep(0.3)

    loop = testing.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert reports.seen == []


def test_run_takes_a_watchdog(caplog: Any) -> None:
    async def main() -> float | None:
        render(0.2)  # blocks the loop, as in the tests above
        await tidal.sleep(0.05)
        return watchdog.watching(tidal.get_running_loop())

    with caplog.at_level("WARNING", logger="tidal"):
        assert tidal.run(main(), watchdog=0.05) == 0.05
    assert "held the loop" in caplog.text

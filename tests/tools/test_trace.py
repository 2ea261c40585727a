"""Traces: tidal.start_trace()/stop_trace(), tidal run --trace, tidal trace summary."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tidal
from tidal._core import loop as loop_module
from tidal._tools import trace
from tidal._tools.trace_summary import summarize

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(autouse=True)
def no_trace() -> Iterator[None]:
    """Every test starts and ends with no trace recording."""
    trace.stop_trace()
    yield
    trace.stop_trace()
    assert loop_module._trace_runner is None


def validate(document: Any) -> list[dict[str, Any]]:
    """Check *document* against the trace-event format; its events."""
    assert isinstance(document, dict)
    events = document["traceEvents"]
    assert isinstance(events, list) and events
    last: dict[tuple[int, int], float] = {}
    ends: dict[tuple[int, int], float] = {}
    for event in events:
        assert isinstance(event, dict)
        assert event["ph"] in ("X", "i", "M"), event
        assert isinstance(event["name"], str) and event["name"]
        assert type(event["pid"]) is int and type(event["tid"]) is int
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name", "thread_sort_index")
            assert isinstance(event["args"], dict)
            continue
        assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0
        assert isinstance(event["cat"], str)
        if "args" in event:
            assert isinstance(event["args"], dict)
        track = (event["pid"], event["tid"])
        assert event["ts"] >= last.get(track, 0.0), event  # ordered per track
        last[track] = event["ts"]
        if event["ph"] == "X":
            assert isinstance(event["dur"], (int, float)) and event["dur"] >= 0
            if event["cat"] in ("step", "wait"):
                # A task's slices follow each other without overlapping.
                assert event["ts"] >= ends.get(track, 0.0) - 0.002, event
                ends[track] = event["ts"] + event["dur"]
        else:
            assert event["s"] in ("g", "p", "t")
    json.dumps(document)  # plain JSON types only
    return events


def load(path: Path) -> list[dict[str, Any]]:
    return validate(json.loads(path.read_text()))


def track_names(events: list[dict[str, Any]]) -> dict[int, str]:
    return {
        e["tid"]: e["args"]["name"]
        for e in events if e["ph"] == "M" and e["name"] == "thread_name"
    }


def slices(events: list[dict[str, Any]], track: str) -> list[dict[str, Any]]:
    names = track_names(events)
    return [e for e in events if e["ph"] != "M" and names.get(e["tid"]) == track]


async def known_program() -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[int] = asyncio.Queue()
    lock = asyncio.Lock()

    async def sleeper() -> None:
        await asyncio.sleep(0.05)
        await queue.put(1)

    async def consumer() -> int:
        return await queue.get()

    async def locker() -> None:
        async with lock:
            pass

    async def reader(sock: socket.socket) -> bytes:
        return await loop.sock_recv(sock, 10)

    async with lock:
        tasks = [
            asyncio.create_task(sleeper(), name="sleeper"),
            asyncio.create_task(consumer(), name="consumer"),
            asyncio.create_task(locker(), name="locker"),
        ]
        await asyncio.sleep(0)
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        read = asyncio.create_task(reader(a), name="reader")
        await asyncio.sleep(0)
        b.send(b"ping")
        assert await read == b"ping"
    await asyncio.gather(*tasks)
    await loop.run_in_executor(None, time.sleep, 0.001)
    arrived = asyncio.Event()
    thread = threading.Thread(
        target=loop.call_soon_threadsafe, args=(arrived.set,), name="poker"
    )
    thread.start()
    await arrived.wait()
    thread.join()
    gc.collect()


def test_trace_of_a_known_program(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with tidal.tracing(out):
        tidal.run(known_program())
    events = load(out)
    names = track_names(events)
    # Task-N: the number depends on the tasks made before in this process.
    [main] = [name for name in names.values() if name.endswith(": known_program")]
    assert main.startswith("Task-")
    assert "sleeper: known_program.<locals>.sleeper" in names.values()

    def waits(track: str) -> list[dict[str, Any]]:
        return [e for e in slices(events, track) if e["cat"] == "wait"]

    steps = [e for e in slices(events, main) if e["cat"] == "step"]
    assert steps and all(e["name"] == main for e in steps)
    [sleep] = waits("sleeper: known_program.<locals>.sleeper")
    assert sleep["name"] == "wait: sleep"
    assert 45_000 <= sleep["dur"] < 2_000_000  # about 0.05 s, in microseconds
    [get] = waits("consumer: known_program.<locals>.consumer")
    assert get["name"] == "wait: queue"
    assert get["args"]["in"] == "Queue.get"
    assert get["dur"] >= sleep["dur"] - 1_000  # put only after the sleep
    assert [e["name"] for e in waits("locker: known_program.<locals>.locker")] == ["wait: lock"]
    assert [e["name"] for e in waits("reader: known_program.<locals>.reader")] == [
        "wait: socket"
    ]
    main_waits = {e["name"] for e in waits(main)}
    assert {"wait: yield", "wait: task reader", "wait: gather", "wait: thread-pool call",
            "wait: event"} <= main_waits, main_waits
    loop_track = slices(events, "event loop (MainThread)")
    assert any(e["cat"] == "io" and e["name"].startswith("I/O read fd ") for e in loop_track)
    # The pool's threads arrive too (the run_in_executor result, the shutdown).
    [arrival] = [e for e in loop_track if e["ph"] == "i" and e["name"].endswith(" poker")]
    assert arrival["name"] == "call_soon_threadsafe from poker"
    assert arrival["args"] == {"callback": "Event.set"}
    assert any(e["name"] == "threadsafe: Event.set" for e in loop_track)
    assert any(e["name"].startswith("GC gen 2") for e in slices(events, "GC"))


def test_ring_buffer_keeps_the_last_events(tmp_path: Path) -> None:
    out = tmp_path / "out.json"

    async def main() -> None:
        for _ in range(500):
            await asyncio.sleep(0)

    with tidal.tracing(out, buffer=40):
        tidal.run(main())
    document = json.loads(out.read_text())
    events = validate(document)
    recorded = [e for e in events if e["ph"] != "M"]
    assert len(recorded) == 40
    assert document["otherData"]["full"] is True
    assert document["otherData"]["buffer"] == 40
    # The last ones: the loop's shutdown tasks are in, the first steps are not.
    assert any("shutdown_default_executor" in e["name"] for e in recorded)


def test_start_stop_errors_and_tracing_off(tmp_path: Path) -> None:
    assert trace.stop_trace() is None
    with pytest.raises(ValueError, match=r"^buffer must be a positive number of events, not 0$"):
        trace.start_trace(tmp_path / "x.json", buffer=0)
    trace.start_trace(tmp_path / "x.json")
    with pytest.raises(RuntimeError, match=r"^a trace is already being recorded$"):
        trace.start_trace(tmp_path / "y.json")
    loop = tidal.new_event_loop()
    try:
        assert loop._slow_turn
        loop.run_until_complete(asyncio.sleep(0))
        assert "_process_events" in loop.__dict__  # attached
        assert trace.stop_trace() == str(tmp_path / "x.json")
        assert "_process_events" not in loop.__dict__
        assert "call_soon_threadsafe" not in loop.__dict__
        loop.run_until_complete(asyncio.sleep(0))
        assert not loop._slow_turn  # back on the plain path
    finally:
        loop.close()
    fresh = tidal.new_event_loop()
    assert not fresh._slow_turn
    fresh.close()


def test_start_inside_a_running_loop(tmp_path: Path) -> None:
    out = tmp_path / "out.json"

    async def main() -> None:
        trace.start_trace(out)
        await asyncio.sleep(0.001)  # the step that started is not in the trace
        await asyncio.sleep(0.001)
        trace.stop_trace()

    tidal.run(main())
    events = load(out)
    assert [e["name"] for e in events if e.get("cat") == "wait"] == ["wait: sleep"]
    # The step that stops is not in it either.
    [step] = [e["name"] for e in events if e.get("cat") == "step"]
    assert step.endswith(": test_start_inside_a_running_loop.<locals>.main")


def test_debug_mode_still_reports_slow_callbacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        asyncio.get_running_loop().slow_callback_duration = 0.01
        time.sleep(0.02)

    with tidal.tracing(tmp_path / "out.json"), caplog.at_level(logging.WARNING, "asyncio"):
        tidal.run(main(), debug=True)
    assert any(
        r.getMessage().startswith("Executing <Task ") and "took 0.0" in r.getMessage()
        for r in caplog.records
    )


def test_tidal_run_trace_flag_and_summary(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(
        "import asyncio\n"
        "async def busy():\n"
        "    for _ in range(20):\n"
        "        sum(range(20000))\n"
        "        await asyncio.sleep(0)\n"
        "async def idle():\n"
        "    await asyncio.sleep(0.03)\n"
        "async def main():\n"
        "    await asyncio.gather(asyncio.create_task(busy(), name='busy'),\n"
        "                         asyncio.create_task(idle(), name='idle'))\n"
        "asyncio.run(main())\n"
    )
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "run", "--trace", str(out), "--trace-buffer=5000",
         str(script)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"tidal run: trace written to {out}\n"
    events = load(out)
    assert {"busy: busy", "idle: idle", "Task-1: main"} <= set(track_names(events).values())

    done = subprocess.run(
        [sys.executable, "-m", "tidal", "trace", "summary", "--top", "3", str(out)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    held, waited = text.split("Top tasks by time held (sum of their steps):\n")[1].split(
        "\nTop tasks by time waited (between steps; longest kind of wait):\n"
    )
    held_rows = held.strip().splitlines()[1:]
    assert len(held_rows) == 3
    assert held_rows[0].endswith("  busy: busy")
    assert " 21 " in held_rows[0]  # steps: 20 switches and the last
    waited_rows = waited.strip().splitlines()[1:]
    assert len(waited_rows) == 3
    assert {waited_rows[0].split()[-2], waited_rows[1].split()[-2]} == {"idle:", "Task-1:"}
    assert any("sleep " in row and row.endswith("idle: idle") for row in waited_rows)
    assert text.startswith(f"{out}: 5 tasks, ")

    done = subprocess.run(
        [sys.executable, "-m", "tidal", "run", "--trace-buffer=0", str(script)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.endswith(
        "tidal run: error: argument --trace-buffer: expected a positive count, got '0'\n"
    )


def test_summary_of_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"nothing": 1}')
    message = r"^.*bad\.json: not a trace-event file \(no traceEvents list\)$"
    with pytest.raises(ValueError, match=message):
        summarize(str(bad), io.StringIO())


def test_the_watchdog_still_names_the_task(tmp_path: Path) -> None:
    from tidal._tools.watchdog import BlockingReport, watch_blocking

    reports: list[BlockingReport] = []
    blocked = threading.Event()

    def report(r: BlockingReport) -> None:
        reports.append(r)
        blocked.set()

    async def main() -> None:
        await asyncio.sleep(0)
        blocked.wait(5)  # until reported: the step holds the loop

    watch_blocking(0.02, callback=report)
    try:
        with tidal.tracing(tmp_path / "out.json"):
            tidal.run(main())
    finally:
        watch_blocking(None)
    assert reports and reports[0].what.startswith("task 'Task-")
    assert any("blocked.wait(5)" in (frame.line or "") for frame in reports[0].stack)

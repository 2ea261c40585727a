"""``python -m tidal ps PID`` / ``pstree PID``: real programs, inspected from outside.

Each target is a separate process that parks its tasks in a known tree and
prints their ids; the inspector then runs against its PID and the output
must be exactly Python 3.14's ``python -m asyncio ps``/``pstree`` rendering
of that tree.  Targets: tidal.run(), asyncio's API with tidal's
loop_factory, ``python -m tidal run``, and a tidal loop in a non-main thread.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tidal._tools import cli, inspect_agent, inspect_cli, inspect_snapshot

pytestmark = pytest.mark.skipif(
    inspect_agent.inspect_signal() is None, reason="needs Linux real-time signals and /proc"
)

SRC = str(Path(__file__).resolve().parents[2] / "src")

# The tree: Task-1 (main) runs a TaskGroup with "worker" (parked in leaf() on
# a future) and "boss" (awaiting worker).  {api} is tidal or asyncio.
TREE = """\
import json, os, sys, threading
import {api} as aio
import tidal

async def leaf(fut):
    await fut  # L:leaf

async def worker(fut):
    await leaf(fut)  # L:worker

async def boss(task):
    await task  # L:boss

async def main():
    fut = aio.get_running_loop().create_future()
    async with aio.TaskGroup() as tg:
        w = tg.create_task(worker(fut), name="worker")
        b = tg.create_task(boss(w), name="boss")
        await aio.sleep(0)
        me = aio.current_task()
        ready = json.dumps({{
            "pid": os.getpid(), "tid": threading.get_native_id(), "main": id(me),
            "main_name": me.get_name(), "worker": id(w), "boss": id(b),
            "threads": threading.active_count(),
        }})
        # Said from a callback, which runs once this task is parked too.
        aio.get_running_loop().call_soon(lambda: print(ready, flush=True))
        await fut  # L:main

{start}
"""

STARTS = {
    "tidal.run": ("tidal", "tidal.run(main())"),
    "loop_factory": (
        "asyncio",
        "with aio.Runner(loop_factory=tidal.new_event_loop) as runner:\n    runner.run(main())",
    ),
    "tidal run": ("asyncio", "aio.run(main())"),
    "thread": (
        "tidal",
        "t = threading.Thread(target=lambda: tidal.run(main()))\nt.start()\nt.join()",
    ),
}


def _line(source: str, marker: str) -> int:
    [number] = [
        n for n, text in enumerate(source.splitlines(), 1) if text.endswith(f"# L:{marker}")
    ]
    return number


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TIDAL_INSPECT", None)
    return env


@contextmanager
def target(
    source: str, tmp_path: Path, *, via_tidal_run: bool = False, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], Path]]:
    """Start *source* as a program; yield (process, its ready line as JSON, its path)."""
    script = tmp_path / "target.py"
    script.write_text(source)
    argv = [sys.executable, "-m", "tidal", "run", str(script)] if via_tidal_run else [
        sys.executable, str(script)
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env()
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if not ready:
            raise AssertionError(f"target did not start: {proc.communicate(timeout=10)[1]}")
        yield proc, json.loads(ready), script
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def inspect(*args: str) -> tuple[int, str, str]:
    """``python -m tidal <args>`` in this process (the subprocess test does it for real)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def expected_table(info: dict[str, Any]) -> str:
    tid, main, worker, boss = info["tid"], info["main"], info["worker"], info["boss"]
    name = info["main_name"]
    rows = [
        [tid, hex(main), name, "main", "", "", "0x0"],
        [tid, hex(boss), "boss", "boss", "main", name, hex(main)],
        [tid, hex(worker), "worker", "leaf -> worker", "main", name, hex(main)],
        [tid, hex(worker), "worker", "leaf -> worker", "boss", "boss", hex(boss)],
    ]
    widths = (10, 20, 20, 50, 50, 15, 15)
    header = ("tid", "task id", "task name", "coroutine stack", "awaiter chain",
              "awaiter name", "awaiter id")
    lines = [" ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True)), "-" * 180]
    lines += [" ".join(f"{c!s:<{w}}" for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines) + "\n"


def expected_tree(info: dict[str, Any], source: str, script: Path) -> str:
    def at(name: str) -> str:
        return f"{name} {script}:{_line(source, name)}"

    return textwrap.dedent(f"""\
        └── (T) {info["main_name"]}
            └──  {at("main")}
                ├── (T) boss
                │   └──  {at("boss")}
                │       └── (T) worker
                │           └──  {at("worker")}
                │               └──  {at("leaf")}
                └── (T) worker
                    └──  {at("worker")}
                        └──  {at("leaf")}
        """)


@pytest.mark.parametrize("start", list(STARTS))
def test_ps_and_pstree_of_a_running_program(start: str, tmp_path: Path) -> None:
    api, code = STARTS[start]
    source = TREE.format(api=api, start=code)
    with target(source, tmp_path, via_tidal_run=start == "tidal run") as (proc, info, script):
        pid = str(info["pid"])
        # A long bound, not the default 5 s: on a loaded CI machine 3.13.0's
        # main thread, parked in Thread.join(), once took longer than that to
        # run the signal handler (an answer comes as soon as it runs).
        status, out, err = inspect("ps", "--timeout", "30", pid)
        assert (status, err) == (0, "")
        assert out == expected_table(info)
        status, out, err = inspect("pstree", "--timeout", "30", pid)
        assert (status, err) == (0, "")
        assert out == expected_tree(info, source, script)
        # Inspected twice, the program runs on undisturbed, with no thread of ours.
        assert proc.poll() is None
        assert info["threads"] == (2 if start == "thread" else 1)


def test_the_real_command_line(tmp_path: Path) -> None:
    source = TREE.format(api="tidal", start=STARTS["tidal.run"][1])
    with target(source, tmp_path) as (_, info, script):
        for command, expected in (
            ("ps", expected_table(info)),
            ("pstree", expected_tree(info, source, script)),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "tidal", command, str(info["pid"])],
                capture_output=True, text=True, env=_env(), timeout=60,
            )
            assert (done.returncode, done.stderr) == (0, "")
            assert done.stdout == expected
        done = subprocess.run(
            [sys.executable, "-m", "tidal", "ps", "--format", "json", str(info["pid"])],
            capture_output=True, text=True, env=_env(), timeout=60,
        )
        snap = json.loads(done.stdout)
        assert snap["schema"] == inspect_snapshot.SCHEMA and snap["pid"] == info["pid"]
        by_name = {t["name"]: t for t in snap["tasks"]}
        assert by_name["worker"]["awaited_by"] == [info["main"], info["boss"]]
        assert by_name["worker"]["stack"][0] == ["leaf", str(script), _line(source, "leaf")]


CYCLE = """\
import json, os
import tidal

async def wait_on(box):
    await box[0]

async def main():
    box_a, box_b = [], []
    a = tidal.create_task(wait_on(box_a), name="a")
    b = tidal.create_task(wait_on(box_b), name="b")
    box_a.append(b)
    box_b.append(a)
    await tidal.sleep(0)
    print(json.dumps({"pid": os.getpid()}), flush=True)
    await tidal.gather(a, b)

tidal.run(main())
"""


def test_pstree_reports_an_await_cycle(tmp_path: Path) -> None:
    with target(CYCLE, tmp_path) as (_, info, _script):
        status, out, err = inspect("pstree", str(info["pid"]))
        assert (status, out) == (1, "")
        assert err == (
            "ERROR: await-graph contains cycles - cannot print a tree!\n\ncycle: b → a → b\n"
        )
        status, out, _ = inspect("ps", str(info["pid"]))
        assert status == 0 and " a " in out and " b " in out


BLOCKED = """\
import json, os, time
import tidal

async def stuck():
    time.sleep(60)  # L:stuck

async def main():
    print(json.dumps({"pid": os.getpid()}), flush=True)
    await tidal.create_task(stuck(), name="stuck")  # L:main

tidal.run(main())
"""


def test_a_loop_blocked_in_a_sync_call_still_answers(tmp_path: Path) -> None:
    # The handler runs while time.sleep() is interrupted: the running task
    # shows its live stack, down to the blocking line.
    with target(BLOCKED, tmp_path) as (_, info, script):
        time.sleep(0.2)  # let it reach time.sleep()
        status, out, err = inspect("pstree", str(info["pid"]))
        stuck = f"stuck {script}:{_line(BLOCKED, 'stuck')}"
        assert status == 0
        assert err.startswith("note: task 'stuck' (0x") and err.endswith(
            f") was running when asked in {stuck}: if it still is on a second look, "
            "it is blocking its loop\n"
        )
        assert out == textwrap.dedent(f"""\
            └── (T) Task-1
                └──  main {script}:{_line(BLOCKED, "main")}
                    └── (T) stuck
                        └──  stuck {script}:{_line(BLOCKED, "stuck")}
            """)


def _error(*args: str) -> str:
    status, out, err = inspect(*args)
    assert (status, out) == (1, "")
    return err


def test_no_such_process() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # exited and reaped: the PID is free
    err = _error("ps", str(dead.pid))
    assert err == f"tidal ps: error: no process with PID {dead.pid}\n"
    assert _error("pstree", "0") == "tidal pstree: error: no process with PID 0\n"


def test_not_a_tidal_program() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        err = _error("ps", str(proc.pid))
        assert err.startswith(f"tidal ps: error: process {proc.pid} (python") and (
            "is not a tidal program" in err
        )
        assert proc.poll() is None  # not killed by a signal it does not handle
    finally:
        proc.kill()
        proc.wait()


def test_tidal_program_with_inspection_off(tmp_path: Path) -> None:
    env = {**_env(), "TIDAL_INSPECT": "0"}
    with target(CYCLE, tmp_path, env=env) as (proc, info, _):
        assert "is not a tidal program" in _error("ps", str(info["pid"]))
        assert proc.poll() is None


def test_dead_process_not_yet_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(500):
            with open(f"/proc/{proc.pid}/status") as file:
                if "State:\tZ" in file.read():
                    break
            time.sleep(0.01)
        err = _error("ps", str(proc.pid))
        assert err.startswith(f"tidal ps: error: process {proc.pid} (") and err.endswith(
            ") has exited\n"
        )
    finally:
        proc.wait()


def test_someone_elses_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # kill() enforces it; tidal says so before creating anything.
    status = {"Name": "python3", "State": "S (sleeping)", "Uid": "1234 1234 1234 1234",
              "SigCgt": "ffffffffffffffff"}
    monkeypatch.setattr(inspect_cli, "_status", lambda pid: status)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    with pytest.raises(
        inspect_cli.InspectError,
        match=r"^permission denied: process 4242 \(python3\) belongs to another user \(uid "
              r"1234\); only its user or root may inspect it$",
    ):
        inspect_cli.request_snapshot(4242)


def test_no_answer_is_bounded(tmp_path: Path) -> None:
    # A program with its own handler for the signal: tidal left it alone, so
    # the request goes unanswered; the inspector gives up after --timeout.
    sig = inspect_agent.inspect_signal()
    source = (
        f"import signal, json, os\nsignal.signal({sig}, lambda *a: None)\nimport tidal\n"
        "print(json.dumps({'pid': os.getpid()}), flush=True)\nimport time\ntime.sleep(60)\n"
    )
    with target(source, tmp_path) as (proc, info, _):
        started = time.monotonic()
        err = _error("ps", "--timeout", "0.3", str(info["pid"]))
        assert time.monotonic() - started < 5
        assert f"process {info['pid']} did not answer within 0.3 s" in err
        assert proc.poll() is None
    directory = inspect_agent.request_dir(os.geteuid())
    assert not [n for n in os.listdir(directory) if n.startswith(f"{info['pid']}.")]


def test_handler_only_in_the_main_thread_and_only_if_free() -> None:
    sig = inspect_agent.inspect_signal()
    code = textwrap.dedent(f"""\
        import signal, sys, threading
        if sys.argv[1] == "thread":
            t = threading.Thread(target=lambda: __import__("tidal"))
            t.start(); t.join()
            print(signal.getsignal({sig}) == signal.SIG_DFL)
        elif sys.argv[1] == "taken":
            mine = lambda *a: None
            signal.signal({sig}, mine)
            import tidal
            print(signal.getsignal({sig}) is mine)
        else:
            import tidal
            from tidal._tools import inspect_agent
            print(inspect_agent.installed() and threading.active_count() == 1)
    """)
    for mode in ("thread", "taken", "main"):
        done = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, env=_env(),
            timeout=60,
        )
        assert done.stdout == "True\n", (mode, done.stderr)


def test_snapshot_of_this_process() -> None:
    # The snapshot function itself, on a tree built here (no signal involved).
    import tidal

    seen: dict[str, Any] = {}

    async def parked(fut: Any) -> None:
        await fut

    async def main() -> None:
        fut = tidal.get_running_loop().create_future()
        child = tidal.create_task(parked(fut), name="child")
        waiter = tidal.create_task(parked(child), name="waiter")
        await tidal.sleep(0)
        snap = inspect_snapshot.snapshot()
        seen.update({t["name"]: t for t in snap["tasks"]})
        seen["ids"] = (id(child), id(waiter), id(tidal.current_task()))
        fut.set_result(None)
        await waiter

    tidal.run(main())
    _, waiter_id, main_id = seen["ids"]
    assert seen["child"]["awaited_by"] == [waiter_id]
    assert seen["child"]["stack"][0][0] == "test_snapshot_of_this_process.<locals>.parked"
    assert seen["waiter"]["awaited_by"] == []
    main = next(v for k, v in seen.items() if k != "ids" and v["id"] == main_id)
    assert main["current"] is True
    assert main["stack"][0][0] == "test_snapshot_of_this_process.<locals>.main"


def test_signal_is_real_time_and_fixed() -> None:
    assert inspect_agent.inspect_signal() == signal.SIGRTMIN + inspect_agent.OFFSET


HANG = Path(__file__).resolve().parents[2] / "examples" / "hang.py"


def _labels(tree: str) -> str:
    # The tree without paths and line numbers (those of tidal's own files move).
    return "\n".join(line.split(" /")[0] for line in tree.splitlines())


def test_the_hang_example_as_documented() -> None:
    # docs/debugging.md: the example, inspected from outside, then from inside.
    proc = subprocess.Popen(
        [sys.executable, str(HANG), "--block"], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        pid = int(ready.split()[2].rstrip(","))
        assert ready.endswith(f"stuck from now on; try: python -m tidal pstree {pid}\n")
        time.sleep(0.2)  # let "report" reach time.sleep()
        status, out, err = inspect("pstree", str(pid))
        assert status == 0 and err.startswith("note: task 'report' (0x")
        assert _labels(out) == textwrap.dedent("""\
            └── (T) Task-1
                └──  main
                    └──  TaskGroup.__aexit__
                        ├── (T) consumer-0
                        │   └──  consume
                        │       └──  Event.wait
                        ├── (T) consumer-1
                        │   └──  consume
                        │       └──  Event.wait
                        ├── (T) flush
                        │   └──  flush
                        │       └──  Queue.join
                        │           └──  Event.wait
                        ├── (T) load-config
                        │   └──  load_config
                        │       └──  Lock.__aenter__
                        │           └──  Lock.acquire
                        └── (T) report
                            └──  report
                                └──  render_report""")
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    done = subprocess.run(
        [sys.executable, str(HANG), "--dump-after", "0.05"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    graphs = done.stdout.split("\n* Task(")[1:]
    assert [g.split("'")[1] for g in graphs] == ["flush", "load-config", "consumer-0", "consumer-1"]
    for graph in graphs:
        assert "  + Awaited by:\n    * Task(name='Task-1', id=0x" in graph
        assert graph.rstrip().endswith("in async main()")
    assert "in async Lock.acquire()" in graphs[1]

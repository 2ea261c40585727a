"""The conformance harness itself, on one tiny module (test_context: 1 test)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "conformance"

LAST_LINE = re.compile(
    r"^conformance: (\d+) passed, (\d+) failed, (\d+) errors, (\d+) skipped of (\d+) "
    r"\(Python (\d+\.\d+\.\d+)\)$"
)


def _run_python(body: str) -> subprocess.CompletedProcess[str]:
    """Run *body* in a fresh interpreter with the harness modules importable."""
    code = f"import asyncio, sys, tidal\nsys.path.insert(0, {str(CONFORMANCE)!r})\n{body}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def harness() -> Any:
    sys.path.insert(0, str(CONFORMANCE))
    try:
        import exclusions
        import report
        import targets

        yield exclusions, report, targets
    finally:
        sys.path.remove(str(CONFORMANCE))


def test_run_one_module_prints_the_summary_line(tmp_path: Path) -> None:
    out_json = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(CONFORMANCE / "run.py"), "--only", "test_context",
         "--no-write-docs", "--logdir", str(tmp_path / "logs"), "--json", str(out_json)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    m = LAST_LINE.match(last)
    assert m, last
    passed, failed, errors, skipped, total = map(int, m.groups()[:5])
    assert total == passed + failed + errors + skipped == 1
    assert m.group(6) == ".".join(map(str, sys.version_info[:3]))
    data = json.loads(out_json.read_text())
    results = data["modules"]["test_context"]["results"]
    assert list(results) == ["DecimalContextTest.test_asyncio_task_decimal_context"]
    # The probe: the test's asyncio.run() ran on tidal's loop, not asyncio's.
    (only,) = results.values()
    assert only["loops"] == ["tidal"]


def test_a_test_on_asyncios_loop_never_counts_as_passed(harness: Any) -> None:
    _, report, _ = harness
    assert report.classify({"outcome": "pass", "loops": ["tidal"]}) == "passed"
    assert report.classify({"outcome": "pass", "loops": ["asyncio", "tidal"]}) == "failed"
    assert report.classify({"outcome": "xfail", "loops": []}) == "passed"
    assert report.classify({"outcome": "xpass", "loops": []}) == "failed"
    assert report.classify({"outcome": "error", "detail": "HANG: ..."}) == "errors"


def test_loop_probe_tells_the_loops_apart() -> None:
    proc = _run_python(
        "import worker\n"
        "worker._install_loop_probe()\n"
        "asyncio.SelectorEventLoop().run_until_complete(asyncio.sleep(0))\n"
        "print(sorted(worker._loops_seen)); worker._loops_seen.clear()\n"
        "tidal.new_event_loop().run_until_complete(tidal.sleep(0))\n"
        "print(sorted(worker._loops_seen))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["['asyncio']", "['tidal']"]


def test_facade_answers_tidal_names_first() -> None:
    proc = _run_python(
        "import _facade\n"
        "f = _facade.facade\n"
        "assert f.Future is tidal.Future and f.Task is tidal.Task, 'tidal names'\n"
        "assert f.base_events is asyncio.base_events, 'fallback to asyncio'\n"
        "mod = _facade.load_module('test.test_asyncio.test_context')\n"
        "assert mod.asyncio is f, 'test modules see the facade'\n"
        "assert sys.modules['asyncio'] is asyncio, 'asyncio itself untouched'\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_every_exclusion_has_a_reason(harness: Any) -> None:
    exclusions, _, _ = harness
    excl = exclusions.load()
    entries = [*excl.modules.values(), *excl.classes.values(), *excl.tests.values()]
    assert entries
    assert all(isinstance(r, str) and len(r) > 10 for r in entries)


def test_builders_name_real_modules(harness: Any) -> None:
    _, _, targets = harness
    available = set(targets.all_modules())
    assert set(targets.BUILDERS) <= available | {"test_staggered", "test_eager_task_factory"}


def test_policy_reset_keeps_tidal() -> None:
    proc = _run_python(
        "import _facade\n"
        "_facade.make_tidal_default()\n"
        "asyncio.set_event_loop_policy(None)\n"
        "loop = asyncio.new_event_loop()\n"
        "assert isinstance(loop, tidal.EventLoop), type(loop)\n"
        "loop.close()\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_virtual_time_test_loop_is_tidals_and_never_waits() -> None:
    # new_test_loop() must give tidal's loop with CPython TestLoop's clock:
    # a 10 s sleep finishes at once, at virtual time 10.
    proc = _run_python(
        "import time\n"
        "from _testloop import TidalTestLoop\n"
        "def gen():\n"
        "    when = yield\n"
        "    assert abs(when - 10) < 1e-6, when\n"
        "    yield 10\n"
        "loop = TidalTestLoop(gen)\n"
        "assert isinstance(loop, tidal.EventLoop)\n"
        "t0 = time.monotonic()\n"
        "loop.run_until_complete(tidal.sleep(10))\n"
        "assert time.monotonic() - t0 < 5 and loop.time() == 10, loop.time()\n"
        "loop.close()\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_excluded_option_collects_the_excluded_tests_only(tmp_path: Path) -> None:
    # worker --list: collection only.  TidalBaseEventLoopTests runs (asyncio's
    # BaseEventLoopTests on tidal's loop) except its internals-driven tests.
    def collected(*extra: str) -> tuple[list[str], dict[str, str]]:
        out = tmp_path / f"events{len(extra)}.jsonl"
        proc = subprocess.run(
            [sys.executable, str(CONFORMANCE / "worker.py"), "test_base_events", "--list",
             "--out", str(out), *extra],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (event,) = [e for e in map(json.loads, out.read_text().splitlines())
                    if e["event"] == "collected"]
        return event["tests"], event["excluded"]

    run, excluded = collected()
    run_excluded, excluded_again = collected("--excluded")
    assert excluded == excluded_again
    assert sorted(run_excluded) == sorted(excluded)
    assert not set(run) & set(run_excluded)
    assert "TidalBaseEventLoopTests.test_set_default_executor_error" in run
    assert "TidalBaseEventLoopTests.test_check_thread" in run
    assert "TidalBaseEventLoopTests.test__run_once" in excluded
    assert "BaseEventLoopTests.test_close" in excluded  # asyncio's own loop


def test_base_event_loop_tests_keep_tidals_wakeup(harness: Any) -> None:
    # The mocks BaseEventLoopTests assigns to _write_to_self/_process_events
    # are dropped, so another thread can still wake tidal's loop.
    from unittest import mock

    _, _, targets = harness
    loop = targets._loop_without_stubs()
    try:
        loop._write_to_self = mock.Mock()
        loop._process_events = mock.Mock()
        assert not isinstance(loop._write_to_self, mock.Mock)
        assert not isinstance(loop._process_events, mock.Mock)
        fut = loop.create_future()
        threading.Timer(0.01, loop.call_soon_threadsafe, (fut.set_result, 7)).start()
        assert loop.run_until_complete(fut) == 7
    finally:
        loop.close()

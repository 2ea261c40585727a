"""Run one test_asyncio module against tidal; stream results as JSON lines.

Started by run.py, one process per module (and again, for the tests still to
run, if a test hangs or kills the process).  Writes to ``--out``:

* ``{"event": "collected", "tests": [...], "excluded": {...}}``
* ``{"event": "start", "id": ...}`` before each test
* ``{"event": "result", "id": ..., "outcome": ..., "detail": ..., "loops": [...]}``
* ``{"event": "done"}`` at the end.

Outcomes: pass, fail, error, skip, xfail (failed as CPython expects: counts as
a pass), xpass (unexpected success: CPython fails it, tidal does not).

``loops`` says which event loops ran during the test: "tidal" or "asyncio"
(asyncio's own loop).  run.py refuses to count a test that ran asyncio's loop.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
import threading
import time
import traceback
import unittest
from typing import Any, TextIO

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The tidal under test: TIDAL_SRC (run.py --src) or this checkout's src/.
_SRC = os.environ.get("TIDAL_SRC") or os.path.join(os.path.dirname(HERE), "src")
if os.path.isdir(os.path.join(_SRC, "tidal")):
    sys.path.insert(0, _SRC)

import _facade  # noqa: E402
import exclusions  # noqa: E402
import targets  # noqa: E402

from tidal._core import _aio  # noqa: E402
from tidal._core.loop import BaseEventLoop as _TidalLoop  # noqa: E402

_out: TextIO
_lock = threading.Lock()
_loops_seen: set[str] = set()
_current: dict[str, Any] = {"id": None, "start": 0.0}


def emit(**event: Any) -> None:
    with _lock:
        _out.write(json.dumps(event) + "\n")
        _out.flush()


# -- which loop ran --------------------------------------------------------


def _record_loop(loop: Any) -> None:
    if loop is not None:
        _loops_seen.add("tidal" if isinstance(loop, _TidalLoop) else "asyncio")


def _install_loop_probe() -> None:
    # Both loops announce themselves through set-running-loop: asyncio's
    # base_events looks up events._set_running_loop at each call, tidal's
    # loop calls _aio.set_running_loop.
    import asyncio.events as aio_events

    real_aio = aio_events._set_running_loop

    def aio_set_running_loop(loop: Any) -> None:
        _record_loop(loop)
        real_aio(loop)

    aio_events._set_running_loop = aio_set_running_loop
    real_tidal = _aio.set_running_loop

    def tidal_set_running_loop(loop: Any) -> None:
        _record_loop(loop)
        real_tidal(loop)

    _aio.set_running_loop = tidal_set_running_loop


# -- per-test watchdog -----------------------------------------------------


def _watchdog(limit: float) -> None:
    while True:
        time.sleep(1.0)
        test_id = _current["id"]
        if test_id is None or time.monotonic() - _current["start"] < limit:
            continue
        frames = sys._current_frames()
        main = frames.get(threading.main_thread().ident or 0)
        stack = "".join(traceback.format_stack(main)[-12:]) if main else ""
        emit(event="result", id=test_id, outcome="error",
             detail=f"HANG: test still running after {limit:.0f}s (killed)\n{stack}",
             loops=sorted(_loops_seen))
        os._exit(3)


# -- result collection -----------------------------------------------------


def _short_id(test: unittest.TestCase) -> str:
    return f"{type(test).__qualname__}.{test._testMethodName}"


def _format_err(test: Any, err: Any) -> str:
    exc_type, exc, tb = err
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    return text[-6000:]


class Recorder(unittest.TestResult):
    """Streams one result line per test."""

    def __init__(self, module: str) -> None:
        super().__init__()
        self.module = module
        self._outcome: tuple[str, str] | None = None
        self.fixture_errors: list[str] = []

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        _loops_seen.clear()
        self._outcome = None
        _current["id"] = _short_id(test)
        _current["start"] = time.monotonic()
        emit(event="start", id=_current["id"])

    def _set(self, outcome: str, detail: str) -> None:
        # A test can report more than once (a failure, then an error in a
        # cleanup); the worst wins.
        rank = {"pass": 0, "xfail": 0, "skip": 1, "xpass": 2, "fail": 3, "error": 4}
        if self._outcome is None or rank[outcome] > rank[self._outcome[0]]:
            self._outcome = (outcome, detail)

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._set("pass", "")

    def addFailure(self, test: Any, err: Any) -> None:
        self._set("fail", _format_err(test, err))

    def addError(self, test: Any, err: Any) -> None:
        if isinstance(test, unittest.TestCase):
            self._set("error", _format_err(test, err))
        else:  # setUpClass / setUpModule / tearDown* failures
            self.fixture_errors.append(f"{test}: {_format_err(test, err)}")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(kind, f"[subtest {subtest._subDescription()}] " + _format_err(test, err))

    def addSkip(self, test: Any, reason: str) -> None:
        if isinstance(test, unittest.TestCase):
            self._set("skip", reason)
        else:
            self.fixture_errors.append(f"{test}: skipped: {reason}")

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        self._set("xfail", "")

    def addUnexpectedSuccess(self, test: Any) -> None:
        self._set("xpass", "unexpected success: CPython expects this test to fail")

    def stopTest(self, test: unittest.TestCase) -> None:
        if self._outcome is None:
            # unittest reports nothing when KeyboardInterrupt/SystemExit
            # escapes a test: main() records it with the traceback.
            super().stopTest(test)
            return
        outcome, detail = self._outcome
        emit(event="result", id=_short_id(test), outcome=outcome, detail=detail,
             loops=sorted(_loops_seen))
        _current["id"] = None
        super().stopTest(test)


# -- collection --------------------------------------------------------------


def collect(module: str, excl: exclusions.Exclusions,
            excluded_only: bool = False) -> tuple[list[unittest.TestCase], dict[str, str]]:
    """The tests of *module* that apply, and the excluded ones with reasons.

    With *excluded_only*, the tests returned to run are the excluded ones
    (run.py --excluded: check that each exclusion is still needed).
    """
    fullname = f"{targets.PACKAGE}.{module}"
    # Helpers first, so the test module imports the facade-loaded versions.
    for helper in ("utils", "functional"):
        _facade.load_module(f"{targets.PACKAGE}.{helper}")
    from _testloop import TidalTestLoop

    utils = sys.modules[f"{targets.PACKAGE}.utils"]
    utils.TestLoop = TidalTestLoop  # type: ignore[attr-defined]
    mod = _facade.load_module(fullname)
    classes = targets.module_test_classes(mod)
    builder = targets.BUILDERS.get(module)
    if builder is not None:
        classes += builder(mod)
    loader = unittest.TestLoader()
    tests: list[unittest.TestCase] = []
    excluded: dict[str, str] = {}
    for cls in classes:
        names = loader.getTestCaseNames(cls)
        for name in names:
            test_id = f"{cls.__qualname__}.{name}"
            reason = excl.reason(module, cls.__qualname__, name)
            if reason is not None:
                excluded[test_id] = reason
            if (reason is not None) == excluded_only:
                tests.append(cls(name))
    return tests, excluded


def main(argv: list[str] | None = None) -> int:
    global _out
    ap = argparse.ArgumentParser()
    ap.add_argument("module")
    ap.add_argument("--out", required=True)
    ap.add_argument("--skip-file", help="file of test ids (Class.test) already done")
    ap.add_argument("--test-timeout", type=float, default=60.0)
    ap.add_argument("--list", action="store_true", help="collect only")
    ap.add_argument("--excluded", action="store_true",
                    help="run the tests exclusions.toml excludes, instead of the others")
    args = ap.parse_args(argv)

    _out = open(args.out, "a", encoding="utf-8")
    faulthandler.enable()
    excl = exclusions.load()
    _facade.make_tidal_default()
    _install_loop_probe()
    try:
        tests, excluded = collect(args.module, excl, excluded_only=args.excluded)
    except BaseException:
        emit(event="module_error", detail=traceback.format_exc()[-6000:])
        return 2
    skip: set[str] = set()
    if args.skip_file:
        with open(args.skip_file, encoding="utf-8") as f:
            skip = {line.strip() for line in f if line.strip()}
    emit(event="collected", tests=[_short_id(t) for t in tests], excluded=excluded)
    if args.list:
        emit(event="done")
        return 0
    suite = unittest.TestSuite([t for t in tests if _short_id(t) not in skip])
    threading.Thread(target=_watchdog, args=(args.test_timeout,), daemon=True).start()
    result = Recorder(args.module)
    try:
        suite.run(result)
    except BaseException:
        # KeyboardInterrupt/SystemExit that escaped unittest: charge it to
        # the running test; run.py starts a new worker for the rest.
        test_id = _current["id"]
        if test_id is not None:
            emit(event="result", id=test_id, outcome="error",
                 detail="escaped the test runner:\n" + traceback.format_exc()[-6000:],
                 loops=sorted(_loops_seen))
        return 4
    for err in result.fixture_errors:
        emit(event="fixture_error", detail=err[-6000:])
    emit(event="fallthrough", names=sorted(_facade.FALLTHROUGH))
    emit(event="done")
    return 0


if __name__ == "__main__":
    # Tests print freely (logging, warnings): keep the protocol file apart.
    sys.stdout.flush()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # leftover non-daemon threads must not hang the worker

"""Run CPython's own test_asyncio against tidal.

    python conformance/run.py [--only MODULE ...] [--jobs N] [--subset ci]
    python conformance/run.py --excluded [--only MODULE ...]

With --excluded it runs only what exclusions.toml leaves out (excluded
modules included) and lists each excluded test with its outcome and reason:
an excluded test that passes on tidal is a candidate to un-exclude.

Runs with the interpreter that starts it: each module of that Python's
``test.test_asyncio`` in its own worker process (see worker.py), with a
per-test and a per-module time limit, and prints as its last line::

    conformance: P passed, F failed, E errors, S skipped of N (Python X.Y.Z)

A full run (no --only/--subset) also rewrites this Python's section of
docs/conformance.md (other versions' sections are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import exclusions  # noqa: E402
import report  # noqa: E402
import targets  # noqa: E402

WORKER = os.path.join(HERE, "worker.py")

#: Workers alive now, so an interrupted run can end them (each leads its own
#: process group, to take its children along).
_live: set[subprocess.Popen[Any]] = set()
_live_lock = threading.Lock()

#: Modules for ``--subset ci``: the core (futures, tasks, loop, handles,
#: policy) and the high-level API, chosen to finish in a few minutes on 2
#: cores.  The socket/TLS/subprocess-heavy modules run in the full run only.
SUBSETS: dict[str, tuple[str, ...]] = {
    "ci": (
        "test_futures", "test_futures2", "test_tasks", "test_eager_task_factory",
        "test_events", "test_locks", "test_queues", "test_taskgroups", "test_timeouts",
        "test_waitfor", "test_runners", "test_pep492", "test_context", "test_threads",
        "test_protocols", "test_staggered", "test_base_events", "test_streams",
        "test_sock_lowlevel", "test_server", "test_unix_events", "test_buffered_proto",
        "test_subprocess",
    ),
}

#: Time limits a subset uses unless given on the command line: (per test,
#: per module, whole run), in seconds.  They bound a CI run even if tidal
#: hangs in every test.
SUBSET_LIMITS: dict[str, tuple[float, float, float]] = {"ci": (20.0, 150.0, 270.0)}

#: Rough relative cost, to start the slow modules first.
_WEIGHT = {
    "test_tasks": 100, "test_events": 90, "test_subprocess": 80, "test_ssl": 70,
    "test_streams": 60, "test_sendfile": 50, "test_sslproto": 50, "test_sock_lowlevel": 40,
    "test_unix_events": 40, "test_base_events": 30, "test_futures": 30, "test_locks": 30,
}


@dataclass
class ModuleRun:
    """What happened to one module."""

    name: str
    excluded_reason: str | None = None
    tests: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fallthrough: set[str] = field(default_factory=set)
    seconds: float = 0.0
    restarts: int = 0


def _read_events(path: str) -> list[dict[str, Any]]:
    events = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line cut short by a killed worker
    except FileNotFoundError:
        pass
    return events


def run_module(name: str, logdir: str, test_timeout: float, module_timeout: float,
               max_restarts: int = 50, excluded: bool = False) -> ModuleRun:
    """Run one module in worker processes until every test has a result."""
    run = ModuleRun(name)
    out = os.path.join(logdir, f"{name}.jsonl")
    log = os.path.join(logdir, f"{name}.log")
    skip = os.path.join(logdir, f"{name}.skip")
    for path in (out, log):
        if os.path.exists(path):
            os.remove(path)
    start = time.monotonic()
    deadline = start + module_timeout
    collected = False
    while True:
        with open(skip, "w", encoding="utf-8") as f:
            f.write("\n".join(run.results))
        cmd = [sys.executable, WORKER, name, "--out", out, "--skip-file", skip,
               "--test-timeout", str(test_timeout)] + (["--excluded"] if excluded else [])
        with open(log, "a", encoding="utf-8") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=logdir,
                                    start_new_session=True)
            with _live_lock:
                _live.add(proc)
            try:
                code: int | None = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                code = None
            finally:
                with _live_lock:
                    _live.discard(proc)
        events = _read_events(out)
        started: str | None = None
        finished = False
        for ev in events:
            kind = ev.get("event")
            if kind == "collected" and not collected:
                collected = True
                run.tests = list(ev["tests"])
                run.excluded = dict(ev["excluded"])
            elif kind == "start":
                started = ev["id"]
            elif kind == "result":
                run.results[ev["id"]] = ev
                if started == ev["id"]:
                    started = None
            elif kind == "module_error":
                run.notes.append("import failed: " + ev["detail"].strip().splitlines()[-1])
                run.tests = [f"{name}.<import>"]
                run.results[run.tests[0]] = {"outcome": "error", "detail": ev["detail"],
                                             "loops": []}
                finished = True
            elif kind == "fixture_error":
                run.notes.append(ev["detail"])
            elif kind == "fallthrough":
                run.fallthrough.update(ev["names"])
            elif kind == "done":
                finished = True
        if finished or not collected:
            if not collected and not finished:
                # Usually tidal itself failed to import: show why.
                tail = _tail(log, 15)
                last = tail.strip().splitlines()[-1] if tail.strip() else ""
                run.notes.append(f"worker exited with {code} before collecting: {last}")
                run.tests = [f"{name}.<collect>"]
                run.results[run.tests[0]] = {
                    "outcome": "error", "loops": [],
                    "detail": f"worker exited with {code} before collecting tests\n{tail}",
                }
            break
        if code is None:
            # Out of time: the rest of the module counts as errors.
            reason = f"module time limit ({module_timeout:.0f}s) reached"
            if started is not None:
                run.results[started] = {"outcome": "error", "detail": "HANG: " + reason,
                                        "loops": []}
            run.notes.append(reason)
            break
        if started is not None:
            run.results[started] = {
                "outcome": "error", "loops": [],
                "detail": f"CRASH: the worker process died (exit code {code}) during this test",
            }
        run.restarts += 1
        if run.restarts > max_restarts:
            run.notes.append("too many worker restarts")
            break
        if all(t in run.results for t in run.tests):
            break
    for test in run.tests:
        if test not in run.results:
            detail = "not run: " + ("; ".join(run.notes)[-2000:] or "no result from the worker")
            run.results[test] = {"outcome": "error", "detail": detail, "loops": []}
    run.seconds = time.monotonic() - start
    return run


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    # The worker leads its own session: end it and any children it left.
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _describe_checkout() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return "this checkout"
    return f"commit {out.stdout.strip()}" if out.returncode == 0 else "this checkout"


def _on_signal(signum: int, frame: Any) -> None:
    with _live_lock:
        for proc in list(_live):
            _kill_group(proc)
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="MODULE", help="run these modules only")
    ap.add_argument("--subset", choices=sorted(SUBSETS), help="a named subset (ci: fast)")
    ap.add_argument("--jobs", "-j", type=int, default=2, help="modules run in parallel")
    ap.add_argument("--test-timeout", type=float, default=None,
                    help="seconds one test may take before it counts as hung (default 60)")
    ap.add_argument("--module-timeout", type=float, default=None,
                    help="seconds one module may take in all (default 1200)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole run: modules not started by then count "
                    "as one error each (default: none)")
    ap.add_argument("--src", help="directory holding the tidal package to test "
                    "(default: this checkout's src/)")
    ap.add_argument("--label", help="what was tested, for the docs (default: the checkout's "
                    "commit, or the --src path)")
    ap.add_argument("--logdir", help="where worker logs go (default: a temp dir)")
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "conformance.md"))
    ap.add_argument("--write-docs", action=argparse.BooleanOptionalAction, default=None,
                    help="update docs/conformance.md (default: on full runs only)")
    ap.add_argument("--json", help="also write every result to this JSON file")
    ap.add_argument("--fail-under", type=float, default=None, metavar="PCT",
                    help="exit 1 if fewer than PCT%% of the applicable tests pass")
    ap.add_argument("--quiet", "-q", action="store_true", help="no per-module lines")
    ap.add_argument("--excluded", action="store_true",
                    help="run only the excluded tests and list each with its outcome and "
                    "reason (never updates the docs)")
    args = ap.parse_args(argv)

    excl = exclusions.load()
    available = targets.all_modules()
    if args.only:
        names = [m if m.startswith("test_") else f"test_{m}" for m in args.only]
        unknown = [m for m in names if m not in available]
        if unknown:
            # Module lists are shared across Pythons (test_staggered is 3.13+).
            print(f"not in this Python's test_asyncio, skipped: {', '.join(unknown)}")
            names = [m for m in names if m in available]
            if not names:
                ap.error("none of the modules given exist on this Python")
    elif args.subset:
        names = [m for m in SUBSETS[args.subset] if m in available]
    else:
        names = available
    full_run = not args.only and not args.subset and not args.excluded
    limits = SUBSET_LIMITS.get(args.subset or "", (60.0, 1200.0, 0.0))
    test_timeout = args.test_timeout if args.test_timeout is not None else limits[0]
    module_timeout = args.module_timeout if args.module_timeout is not None else limits[1]
    budget = args.budget if args.budget is not None else limits[2]
    if args.src:
        os.environ["TIDAL_SRC"] = os.path.abspath(args.src)
    logdir = args.logdir or tempfile.mkdtemp(prefix="tidal-conformance-")
    os.makedirs(logdir, exist_ok=True)

    runs: dict[str, ModuleRun] = {}
    to_run = []
    for name in names:
        reason = excl.module_reason(name)
        if reason is not None and not args.excluded:
            runs[name] = ModuleRun(name, excluded_reason=reason)
        else:
            to_run.append(name)
    to_run.sort(key=lambda m: -_WEIGHT.get(m, 10))
    print_lock = threading.Lock()
    t0 = time.monotonic()

    def one(name: str) -> None:
        left = t0 + budget - time.monotonic() if budget else module_timeout
        if left <= 5:
            run = ModuleRun(name, tests=[f"{name}.<not run>"])
            run.results[run.tests[0]] = {"outcome": "error", "loops": [],
                                         "detail": "not run: the run's time budget ran out"}
            run.notes.append(f"not run: the run's {budget:.0f}s budget ran out")
        else:
            run = run_module(name, logdir, test_timeout, min(module_timeout, left),
                             excluded=args.excluded)
        runs[name] = run
        if not args.quiet:
            c = report.counts(run.results)
            with print_lock:
                print(f"{name:28s} {c['passed']:4d} passed {c['failed']:4d} failed "
                      f"{c['errors']:4d} errors {c['skipped']:4d} skipped "
                      f"of {c['total']:4d}  ({run.seconds:5.1f}s"
                      f"{f', {run.restarts} restarts' if run.restarts else ''})",
                      flush=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for fut in [pool.submit(one, n) for n in to_run]:
            fut.result()
    elapsed = time.monotonic() - t0

    ordered = [runs[n] for n in names]
    totals = report.totals(ordered)
    version = targets.python_version()
    if args.excluded:
        print()
        print(report.render_excluded_text(ordered))
    elif not args.quiet:
        print()
        print(report.render_causes_text(ordered, limit=15))
        print(f"worker logs: {logdir}  ({elapsed:.0f}s)")
    write_docs = full_run if args.write_docs is None else args.write_docs
    if write_docs:
        label = args.label or (args.src and os.path.abspath(args.src)) or _describe_checkout()
        report.update_docs(args.docs, version, ordered, elapsed, args.jobs, label)
    if args.json:
        report.write_json(args.json, version, ordered)
    print(f"conformance: {totals['passed']} passed, {totals['failed']} failed, "
          f"{totals['errors']} errors, {totals['skipped']} skipped of {totals['total']} "
          f"(Python {version})", flush=True)
    if args.fail_under is not None and totals["total"]:
        if 100.0 * totals["passed"] / totals["total"] < args.fail_under:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

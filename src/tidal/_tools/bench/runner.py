"""``python -m tidal bench``: choose, run (interleaved, in fresh processes), report."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from tidal._tools.bench import worker
from tidal._tools.bench.registry import (
    RUNTIMES,
    WATCHDOG_THRESHOLD_ENV,
    Runtime,
    Workload,
    all_workloads,
)
from tidal._tools.bench.report import (
    RAW,
    Results,
    format_machine,
    format_markdown,
    format_overhead,
    format_table,
    machine_info,
    write_json,
)
from tidal._tools.bench.stats import Cell, summarize

__all__ = (
    "add_record", "bench_main", "plan", "run_one", "select_runtimes", "select_workloads",
    "split_runnable",
)

_WORKER = str(Path(worker.__file__).resolve())
FULL_REPEAT, FULL_INNER = 5, 3
QUICK_REPEAT, QUICK_INNER = 1, 2
_QUICK_TIMEOUT = 30.0


def select_workloads(
    patterns: Sequence[str] | None, quick: bool, floors: bool = True,
) -> list[Workload]:
    """The workloads to run, each followed by its floor.

    Names and glob patterns pick workloads (ValueError for one that matches
    nothing); without any, every workload runs, less those --quick skips.
    """
    everything = all_workloads()
    by_name = {wl.name: wl for wl in everything}
    if patterns:
        chosen: list[Workload] = []
        for pattern in patterns:
            hits = [wl for wl in everything if fnmatch.fnmatchcase(wl.name, pattern)]
            if not hits:
                raise ValueError(f"no workload matches {pattern!r} (see --list)")
            chosen += [wl for wl in hits if wl not in chosen]
    else:
        chosen = [wl for wl in everything if not wl.raw and (wl.quick or not quick)]
    ordered: list[Workload] = []
    for wl in chosen:
        if wl not in ordered:
            ordered.append(wl)
        floor = by_name.get(wl.floor) if wl.floor and floors else None
        if floor is not None and floor not in ordered:
            ordered.append(floor)
    return ordered


def select_runtimes(
    names: Sequence[str] | None, compiled: bool = True,
) -> tuple[list[Runtime], list[Runtime]]:
    """(runtimes to run, runtimes skipped as not available); asyncio always runs.

    Without *names*, every default runtime is wanted, the compiled ones unless
    *compiled* is False; with them, those named.  The instrumented runtimes
    (``tidal+watchdog``...) are not default: they run only when named.
    """
    known = {rt.name for rt in RUNTIMES}
    for name in names or ():
        if name not in known:
            raise ValueError(f"unknown runtime {name!r}; known: {', '.join(sorted(known))}")
    wanted = [
        rt for rt in RUNTIMES
        if rt.name == "asyncio"
        or (rt.name in names if names else rt.default and (compiled or not rt.compiled))
    ]
    usable = [rt for rt in wanted if rt.available()]
    return usable, [rt for rt in wanted if rt not in usable]


def split_runnable(workloads: Sequence[Workload]) -> tuple[list[Workload], list[str]]:
    """(workloads whose modules are installed, one note per workload left out)."""
    runnable, notes = [], []
    for wl in workloads:
        missing = wl.missing()
        if missing:
            notes.append(f"{wl.name} skipped: {', '.join(missing)} not installed")
        else:
            runnable.append(wl)
    return runnable, notes


def plan(
    workloads: Sequence[Workload], runtimes: Sequence[Runtime], repeat: int,
) -> Iterator[tuple[Workload, str]]:
    """(workload, runtime name) in run order: A B C D F, A B C D F, ... per workload.

    A workload's floor (F) takes part in its rounds, so that the floor sees
    the same machine as the runtimes it bounds even when the load changes.
    """
    by_name = {wl.name: wl for wl in workloads}
    placed: set[str] = set()
    for wl in workloads:
        if wl.name in placed:
            continue
        floor = by_name.get(wl.floor) if wl.floor and not wl.raw else None
        if floor is not None and floor.name in placed:
            floor = None  # already measured with another workload
        placed.update({wl.name} | ({floor.name} if floor else set()))
        names = [RAW] if wl.raw else [rt.name for rt in runtimes]
        rounds = min(repeat, wl.max_repeat) if wl.max_repeat else repeat
        for _ in range(rounds):
            for name in names:
                yield wl, name
            if floor is not None:
                yield floor, RAW


def run_one(
    wl: Workload, runtime: str, n: int, inner: int, timeout: float, site: Path | None = None,
) -> dict[str, Any]:
    """Measure *wl* on *runtime* in a fresh interpreter; the worker's result record.

    *site*: a compiled build's directory, put first on the worker's sys.path.
    """
    cmd = [sys.executable, "-I", _WORKER, wl.name, runtime, "--n", str(n), "--inner", str(inner)]
    if site is not None:
        cmd += ["--site", str(site)]
    # Its own session, so that a hung worker and its client process can be
    # killed together by process group.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "reason": f"no result within {timeout:.0f} s"}
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith(worker.RESULT_MARK):
            record: dict[str, Any] = json.loads(line[len(worker.RESULT_MARK):])
            return record
    tail = err.decode(errors="replace").strip().splitlines()
    reason = tail[-1] if tail else f"worker exited with status {proc.returncode}"
    return {"status": "error", "reason": reason}


def add_record(
    cells: dict[tuple[str, str], Cell], failed: dict[tuple[str, str], int],
    key: tuple[str, str], record: dict[str, Any], seconds: float = 0.0,
) -> None:
    """Merge one run's record into its cell, counting the run if it failed."""
    cells.setdefault(key, Cell()).add(record, seconds)
    if record.get("status") in ("error", "timeout"):
        failed[key] = failed.get(key, 0) + 1


class Progress:
    """A progress bar on a terminal; one plain line per measurement otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def _bar(self, label: str) -> None:
        width = 24
        filled = width * self.done // max(self.total, 1)
        eta = ""
        if self.done:
            left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
            eta = f" ETA {left:.0f}s"
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}{eta}  {label}"
        self.stream.write("\r" + line[:110].ljust(110))
        self.stream.flush()

    def start(self, label: str) -> None:
        """A measurement begins."""
        if self.tty:
            self._bar(label)

    def finish(self, label: str, record: dict[str, Any], unit: str) -> None:
        """A measurement ended with *record*."""
        self.done += 1
        if self.tty:
            self._bar(label)
            return
        status = record.get("status")
        if status == "ok":
            first: list[float] = next(iter(record["samples"].values()), [])
            summ = summarize(first)
            what = f"{summ.median:.4g} {unit}" if summ else "ok"
        else:
            what = f"{status} ({record.get('reason', '')})"
        width = len(str(self.total))
        print(f"[{self.done:>{width}}/{self.total}] {label}: {what}", file=self.stream, flush=True)

    def close(self) -> None:
        """Clear the bar."""
        if self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()


def _list(runtimes: Sequence[Runtime]) -> None:
    print("workloads (floors are run along with the workloads they bound):")
    for wl in all_workloads():
        tag = " [floor]" if wl.raw else ("" if wl.quick else " [not in --quick]")
        missing = wl.missing()
        if missing:
            tag += f" [{', '.join(missing)} not installed]"
        print(f"  {wl.name:<24} {wl.doc}{tag}")
    print("\nruntimes:")
    for rt in runtimes:
        state = "" if rt.available() else f"  ({rt.unavailable_reason()})"
        tag = "" if rt.default else " [only with --runtime]"
        print(f"  {rt.name:<20} {rt.description}{tag}{state}")


def _framework_notes(workloads: Sequence[Workload]) -> list[str]:
    """How the framework rows are loaded: which generator, which CPUs."""
    tools = sorted({str(wl.params["generator"]) for wl in workloads if "generator" in wl.params})
    if not tools:
        return []
    from tidal._tools.bench.wl_frameworks import cpu_split

    split = cpu_split()
    where = (f"server pinned to CPU {min(split[0])}, generator to CPU {min(split[1])}"
             if split else "one usable CPU: nothing pinned")
    return [f"framework rows loaded by {', '.join(tools)}; {where}"]


def bench_main(options: argparse.Namespace) -> int:
    """Run the benchmark as the parsed command line asks; returns the exit status."""
    if options.list:
        _list(RUNTIMES)
        return 0
    quick: bool = options.quick
    try:
        workloads = select_workloads(options.only, quick, floors=not options.no_floors)
        runtimes, missing = select_runtimes(
            options.runtime, compiled=not getattr(options, "no_compiled", False))
    except ValueError as err:
        print(f"tidal bench: {err}", file=sys.stderr)
        return 2
    workloads, left_out = split_runnable(workloads)
    if not workloads:
        # Not an error: what was asked for cannot run here, and says why.
        print("tidal bench: nothing to run: " + "; ".join(left_out))
        return 0
    skipped = [f"{rt.name} skipped: {rt.unavailable_reason()}" for rt in missing]
    site: Path | None = None
    if any(rt.compiled for rt in runtimes):
        from tidal._tools.bench.compiled import ensure_build

        build = ensure_build(sys.stdout)
        site = build.site
        if site is None:
            skipped += [f"{rt.name} skipped: {build.note}" for rt in runtimes if rt.compiled]
            runtimes = [rt for rt in runtimes if not rt.compiled]
    threshold = getattr(options, "watchdog_threshold", None)
    if threshold is not None:
        if not threshold > 0:
            print("tidal bench: --watchdog-threshold must be a positive number of seconds",
                  file=sys.stderr)
            return 2
        os.environ[WATCHDOG_THRESHOLD_ENV] = repr(threshold)  # the workers inherit it
    repeat = options.repeat or (QUICK_REPEAT if quick else FULL_REPEAT)
    inner = QUICK_INNER if quick else FULL_INNER
    sizes = {wl.name: wl.quick_n if quick else wl.n for wl in workloads}
    settings = {
        "quick": quick, "repeat": repeat, "inner": inner, "n": sizes,
        "order": "interleaved", "executable": sys.executable,
        "compiled_build": str(site) if site else None, "skipped": skipped + left_out,
        "watchdog_threshold": threshold,
    }
    machine = machine_info(RUNTIMES)
    print(format_machine(machine))
    print(
        f"runs:    {'quick, ' if quick else ''}{repeat} fresh process(es) x up to {inner} "
        "samples per workload and runtime, interleaved"
        + ("" if all(wl.max_repeat is None or wl.max_repeat >= repeat for wl in workloads)
           else " (fewer for the longest rows)"),
    )
    notes = skipped + left_out + _framework_notes(workloads)
    if threshold is not None and any(rt.instrument == "watchdog" for rt in runtimes):
        notes.append(f"watchdog threshold {threshold:g} s (default 0.1)")
    for note in notes:
        print(f"note:    {note}")
    print(flush=True)

    cells: dict[tuple[str, str], Cell] = {}
    failed: dict[tuple[str, str], int] = {}
    compiled_names = {rt.name for rt in runtimes if rt.compiled}
    steps = list(plan(workloads, runtimes, repeat))
    progress = Progress(len(steps), sys.stderr)
    for wl, rt_name in steps:
        label = f"{wl.name} on {rt_name}"
        progress.start(label)
        timeout = min(wl.timeout, _QUICK_TIMEOUT) if quick else wl.timeout
        began = time.monotonic()
        record = run_one(wl, rt_name, sizes[wl.name], inner, timeout,
                         site if rt_name in compiled_names else None)
        add_record(cells, failed, (wl.name, rt_name), record, time.monotonic() - began)
        progress.finish(label, record, wl.metrics[0].unit)
    progress.close()
    machine["load_average_end"] = list(os.getloadavg())
    machine["seconds"] = round(time.monotonic() - progress.started, 1)

    results = Results(machine, settings, runtimes, workloads, cells, failed)
    print(
        "median of all samples; \N{PLUS-MINUS SIGN}: half the min-max range; "
        "xN: speed relative to asyncio (higher is faster); floor: no event loop at all\n"
        .encode(sys.stdout.encoding or "ascii", "replace").decode(sys.stdout.encoding or "ascii")
    )
    print(format_table(results))
    overheads = format_overhead(results)
    if overheads:
        print("\n" + overheads)
    print(f"\n{machine['seconds']:.0f} s; load average at the end "
          f"{machine['load_average_end'][0]:.2f}")
    if options.json:
        write_json(results, options.json)
        print(f"raw samples written to {options.json}")
    if getattr(options, "markdown", None):
        Path(options.markdown).write_text(format_markdown(results) + "\n")
        print(f"markdown table written to {options.markdown}")
    if options.chart:
        from tidal._tools.bench.chart import draw_chart

        print(draw_chart(results, options.chart))
    # The baselines failing means the benchmark itself is broken; tidal's
    # failures are results, shown in the table.
    broken = [
        key for key, cell in cells.items()
        if key[1] in ("asyncio", RAW) and cell.status in ("error", "timeout")
    ]
    return 1 if broken else 0

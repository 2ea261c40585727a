"""``python -m tidal trace summary out.json``: the top tasks by time held and waited."""

from __future__ import annotations

import json
from typing import Any, TextIO

__all__ = ("summarize", "summary_main")


class _TaskTotals:
    __slots__ = ("name", "steps", "held", "waited", "waits")

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0
        self.held = 0.0  # microseconds
        self.waited = 0.0
        self.waits: dict[str, float] = {}  # wait slice name -> microseconds


def _load(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        document = json.load(fh)
    events = document.get("traceEvents") if isinstance(document, dict) else document
    if not isinstance(events, list):
        raise ValueError(f"{path}: not a trace-event file (no traceEvents list)")
    return [event for event in events if isinstance(event, dict)]


def summarize(path: str, out: TextIO, *, top: int = 10) -> None:
    """Write the summary of the trace at *path* to *out*: *top* rows per table."""
    events = _load(path)
    names: dict[Any, str] = {}
    for event in events:
        if event.get("ph") == "M" and event.get("name") == "thread_name":
            names[event.get("tid")] = str(event.get("args", {}).get("name", event.get("tid")))
    tasks: dict[Any, _TaskTotals] = {}
    loop_time = gc_time = 0.0
    gc_count = 0
    start = end = None
    for event in events:
        if event.get("ph") != "X":
            continue
        ts = float(event.get("ts", 0.0))
        dur = float(event.get("dur", 0.0))
        start = ts if start is None else min(start, ts)
        end = ts + dur if end is None else max(end, ts + dur)
        cat = event.get("cat")
        tid = event.get("tid")
        if cat in ("step", "wait"):
            totals = tasks.get(tid)
            if totals is None:
                totals = tasks[tid] = _TaskTotals(names.get(tid, str(tid)))
            if cat == "step":
                totals.steps += 1
                totals.held += dur
            else:
                totals.waited += dur
                name = str(event.get("name", "wait"))
                totals.waits[name] = totals.waits.get(name, 0.0) + dur
        elif cat == "gc":
            gc_count += 1
            gc_time += dur
        else:
            loop_time += dur
    span = 0.0 if start is None or end is None else end - start
    held_total = sum(t.held for t in tasks.values())
    out.write(
        f"{path}: {len(tasks)} tasks, {_ms(span)} traced; tasks held the loop {_ms(held_total)}, "
        f"other callbacks {_ms(loop_time)}, GC {_ms(gc_time)} in {gc_count} collections\n\n"
    )
    by_held = sorted(tasks.values(), key=lambda t: t.held, reverse=True)[:top]
    out.write("Top tasks by time held (sum of their steps):\n")
    out.write(f"  {'held':>11} {'steps':>7} {'mean':>10}  task\n")
    for t in by_held:
        mean = t.held / t.steps if t.steps else 0.0
        out.write(f"  {_ms(t.held):>11} {t.steps:>7} {_ms(mean):>10}  {t.name}\n")
    by_waited = sorted(tasks.values(), key=lambda t: t.waited, reverse=True)[:top]
    out.write("\nTop tasks by time waited (between steps; longest kind of wait):\n")
    out.write(f"  {'waited':>11}  {'mostly':<28} task\n")
    for t in by_waited:
        mostly = max(t.waits, key=lambda k: t.waits[k]) if t.waits else "-"
        mostly = mostly.removeprefix("wait: ")
        out.write(f"  {_ms(t.waited):>11}  {mostly:<28} {t.name}\n")


def _ms(us: float) -> str:
    return f"{us / 1000:.3f} ms"


def summary_main(path: str, top: int, out: TextIO, err: TextIO) -> int:
    """The command: 0, or 1 with a message on *err* for a missing or malformed file."""
    try:
        summarize(path, out, top=top)
    except (OSError, ValueError) as exc:
        err.write(f"tidal trace summary: error: {exc}\n")
        return 1
    return 0

"""What the benchmark prints and writes: the machine, the table, the JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tidal._tools.bench.registry import Metric, Runtime, Workload
from tidal._tools.bench.stats import Cell, Overhead, Summary, overhead, relative_speed, summarize

__all__ = (
    "RAW",
    "Results",
    "format_markdown",
    "format_machine",
    "format_overhead",
    "format_table",
    "machine_info",
    "to_json",
)

#: the pseudo-runtime of the floor rows
RAW = "raw"
SCHEMA = 1


@dataclass
class Results:
    """A whole run: what ran, on what, and every cell."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    runtimes: list[Runtime]
    workloads: list[Workload]
    cells: dict[tuple[str, str], Cell]
    #: repetitions that ended in an error or a timeout, by (workload, runtime)
    failed: dict[tuple[str, str], int] = field(default_factory=dict)

    def cell(self, workload: str, runtime: str) -> Cell | None:
        """The cell of *workload* on *runtime*, if it was run."""
        return self.cells.get((workload, runtime))

    def failed_runs(self, workload: str, runtime: str) -> tuple[int, int]:
        """(failed, all) repetitions of a cell; a number from (0, n) is clean."""
        cell = self.cell(workload, runtime)
        runs = len(cell.seconds) if cell is not None else 0
        return self.failed.get((workload, runtime), 0), runs

    def summary(self, workload: str, runtime: str, key: str) -> Summary | None:
        """Statistics of one metric of one cell (None unless it has samples)."""
        cell = self.cell(workload, runtime)
        if cell is None or cell.status != "ok":
            return None
        return summarize(cell.samples.get(key, []))

    def overhead(self, wl: Workload, metric: Metric, rt: Runtime) -> Overhead | None:
        """What instrumented *rt* costs over its base runtime on this row (None if unknown)."""
        if rt.base is None or wl.raw:
            return None
        cell, base = self.cell(wl.name, rt.name), self.cell(wl.name, rt.base)
        if cell is None or base is None or cell.status != "ok" or base.status != "ok":
            return None
        # A failed run shifts the rounds: the samples no longer pair up.
        clean = not (self.failed_runs(wl.name, rt.name)[0] or self.failed_runs(wl.name, rt.base)[0])
        return overhead(metric, cell.samples.get(metric.key, []),
                        base.samples.get(metric.key, []), paired=clean)

    def overhead_groups(self) -> list[tuple[Runtime, list[Runtime]]]:
        """(base runtime, the instrumented runtimes measured against it) present in this run."""
        by_name = {rt.name: rt for rt in self.runtimes}
        groups: dict[str, list[Runtime]] = {}
        for rt in self.runtimes:
            if rt.base is not None and rt.base in by_name:
                groups.setdefault(rt.base, []).append(rt)
        return [(by_name[name], members) for name, members in groups.items()]

    def rows(self) -> Iterator[tuple[Workload, Metric]]:
        """(workload, metric) of every row of the table.

        A floor shows in the floor column of the workloads it bounds; one run
        without any of them (``--only 'floor_*'``) gets a row of its own.
        """
        bounded = {wl.floor for wl in self.workloads if not wl.raw}
        for wl in self.workloads:
            if not wl.raw or wl.name not in bounded:
                for metric in wl.metrics:
                    yield wl, metric

    def floor_summary(self, wl: Workload, metric: Metric) -> Summary | None:
        """The floor's statistics for this row, if its floor ran."""
        if wl.raw:
            return self.summary(wl.name, RAW, metric.key)
        return self.summary(wl.floor, RAW, metric.key) if wl.floor else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _tidal_version() -> str:
    try:
        import tidal

        return str(tidal.__version__)
    except Exception as exc:  # a broken tree still gets its baselines measured
        return f"unknown ({type(exc).__name__})"


def machine_info(runtimes: Sequence[Runtime]) -> dict[str, Any]:
    """The facts printed at the top and stored in the JSON."""
    versions = {rt.loop_module: rt.version() for rt in runtimes if rt.loop_module != "tidal"}
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory": _memory_total(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": sys.version.replace("\n", " "),
        "tidal": _tidal_version(),
        "uvloop": versions.get("uvloop"),
        "rloop": versions.get("rloop"),
        "load_average": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def format_machine(machine: dict[str, Any]) -> str:
    """The header block."""
    def missing(value: Any) -> str:
        return value if value else "not installed"

    load = ", ".join(f"{x:.2f}" for x in machine["load_average"])
    cores = machine["cores"]
    if machine.get("usable_cores") not in (None, cores):
        cores = f"{cores} ({machine['usable_cores']} usable)"
    lines = [
        f"machine: {machine['cpu']}, {cores} cores, {machine['memory']}, {machine['os']}",
        f"python:  {machine['python']}   tidal {machine['tidal']}   "
        f"uvloop {missing(machine['uvloop'])}   rloop {missing(machine['rloop'])}",
        f"load:    {load} (1, 5, 15 min) at {machine['date']}",
    ]
    if machine["load_average"][0] > 0.5 * (machine.get("usable_cores") or 1):
        lines.append("note:    other processes are busy on this machine: expect noisy numbers")
    return "\n".join(lines)


def _num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _unit(metric: Metric, ascii_only: bool) -> str:
    return metric.unit.replace("us/", "us/" if ascii_only else "\N{MICRO SIGN}s/")


def _row_title(wl: Workload, metric: Metric) -> str:
    title = f"floor: {wl.title}" if wl.raw else wl.title
    return f"{title} [{metric.label}]" if metric.label else title


def _cell_text(
    res: Results, wl: Workload, metric: Metric, rt: Runtime, spread: bool, relative: bool = True,
) -> str:
    if wl.raw:
        return ""
    cell = res.cell(wl.name, rt.name)
    if cell is None:
        return "-"
    if cell.status != "ok":
        return cell.status
    summ = summarize(cell.samples.get(metric.key, []))
    if summ is None:
        return "-"
    text = _num(summ.median)
    if spread and summ.count > 1:
        text += f" \N{PLUS-MINUS SIGN}{summ.spread_pct:.0f}%"
    base = res.summary(wl.name, "asyncio", metric.key) if relative else None
    rel = relative_speed(metric, summ.median, base.median) if base else None
    if rel is not None:
        text += f" x{rel:.2f}"
    failed, runs = res.failed_runs(wl.name, rt.name)
    if failed:
        # Not a clean result: the number comes from the runs that finished.
        text += f" [{failed}/{runs} failed]"
    return text


def _table_cells(res: Results, spread: bool, ascii_only: bool) -> tuple[list[str], list[list[str]]]:
    header = ["workload", "unit", *(rt.label for rt in res.runtimes), "floor"]
    body = []
    for wl, metric in res.rows():
        floor = res.floor_summary(wl, metric)
        body.append([
            _row_title(wl, metric), _unit(metric, ascii_only),
            *(_cell_text(res, wl, metric, rt, spread) for rt in res.runtimes),
            _num(floor.median) if floor else "",
        ])
    return header, body


def _notes(res: Results) -> list[str]:
    """One line per distinct reason a cell is not a number."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for (wl_name, rt_name), cell in res.cells.items():
        if cell.status in ("ok", "pending"):
            continue
        for reason in cell.reasons or [cell.status]:
            grouped.setdefault((cell.status, rt_name, reason), []).append(wl_name)
    return [
        f"  {status} on {rt}: {reason}  ({', '.join(names)})"
        for (status, rt, reason), names in sorted(grouped.items())
    ]


def _failure_notes(res: Results) -> list[str]:
    """One line per measured cell some of whose repetitions failed."""
    lines = []
    for (wl_name, rt_name), cell in res.cells.items():
        failed, runs = res.failed_runs(wl_name, rt_name)
        if cell.status != "ok" or not failed:
            continue
        why = "; ".join(cell.reasons) or "no reason given"
        lines.append(f"  {wl_name} on {rt_name}: {failed} of {runs} runs failed ({why}); "
                     f"the figure is from the other {runs - failed}")
    return sorted(lines)


def _ascii_only() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "\N{MICRO SIGN}\N{PLUS-MINUS SIGN}".encode(encoding)
    except UnicodeEncodeError:
        return True
    return False


def _aligned(header: list[str], body: list[list[str]], ascii_only: bool) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for row in [header, *body]:
        cols = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cols += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cols).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    text = "\n".join(lines)
    if ascii_only:
        text = text.replace("\N{PLUS-MINUS SIGN}", "+-")
    return text


def _markdown_rows(header: list[str], body: list[list[str]]) -> str:
    align = ["---", "---"] + ["--:"] * (len(header) - 2)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def format_table(res: Results) -> str:
    """The plain-text table, with the notes that explain n/a and errors."""
    ascii_only = _ascii_only()
    header, body = _table_cells(res, spread=True, ascii_only=ascii_only)
    text = _aligned(header, body, ascii_only)
    notes = _notes(res)
    if notes:
        text += "\n\nnot measured:\n" + "\n".join(notes)
    partial = _failure_notes(res)
    if partial:
        text += "\n\n[k/n failed]: measured, but k of the n runs failed:\n" + "\n".join(partial)
    return text


OVERHEAD_LEGEND = (
    "overhead vs the plain runtime: extra time per op (for req/s, per request; "
    "for memory, extra bytes), + is slower; median of the overheads of the "
    "rounds' paired samples [their quartiles]"
)


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _overhead_text(res: Results, wl: Workload, metric: Metric, rt: Runtime) -> str:
    cell = res.cell(wl.name, rt.name)
    if cell is None:
        return "-"
    if cell.status != "ok":
        return cell.status
    result = res.overhead(wl, metric, rt)
    if result is None:
        return "-"
    if result.q1 is None or result.q3 is None:
        return _pct(result.median)
    return f"{_pct(result.median)} [{_pct(result.q1)}, {_pct(result.q3)}]"


def _overhead_cells(res: Results, ascii_only: bool) -> tuple[list[str], list[list[str]]]:
    groups = res.overhead_groups()
    header = ["workload", "unit"]
    for base, members in groups:
        header += [base.label, *(f"{rt.label} overhead" for rt in members)]
    body = []
    for wl, metric in res.rows():
        if wl.raw:
            continue
        row = [_row_title(wl, metric), _unit(metric, ascii_only)]
        for base, members in groups:
            row.append(_cell_text(res, wl, metric, base, spread=True, relative=False))
            row += [_overhead_text(res, wl, metric, rt) for rt in members]
        body.append(row)
    return header, body


def format_overhead(res: Results, markdown: bool = False) -> str:
    """The instrumented runtimes against their plain ones; "" if none of them ran."""
    if not res.overhead_groups():
        return ""
    ascii_only = not markdown and _ascii_only()
    header, body = _overhead_cells(res, ascii_only)
    if markdown:
        text = _markdown_rows(header, body)
    else:
        text = _aligned(header, body, ascii_only)
    return f"{OVERHEAD_LEGEND}:\n\n{text}"


def format_markdown(res: Results) -> str:
    """The table as Markdown (for docs/benchmarks.md), and the overhead table if any."""
    header, body = _table_cells(res, spread=True, ascii_only=False)
    lines = [_markdown_rows(header, body)]
    partial = _failure_notes(res)
    if partial:
        lines += ["", "[k/n failed]: measured, but k of the n runs failed:", ""]
        lines += [f"- {line.strip()}" for line in partial]
    overheads = format_overhead(res, markdown=True)
    if overheads:
        lines += ["", overheads]
    return "\n".join(lines)


def to_json(res: Results) -> dict[str, Any]:
    """Everything, raw samples included, as one JSON-ready dict."""
    workloads = []
    by_name = {rt.name: rt for rt in res.runtimes}
    for wl in res.workloads:
        results: dict[str, Any] = {}
        runtime_names = [RAW] if wl.raw else [rt.name for rt in res.runtimes]
        for name in runtime_names:
            cell = res.cell(wl.name, name)
            if cell is None:
                continue
            entry = cell.to_json()
            entry["failed_runs"], entry["runs"] = res.failed_runs(wl.name, name)
            entry["stats"] = {}
            for metric in wl.metrics:
                summ = res.summary(wl.name, name, metric.key)
                if summ is None:
                    continue
                stats: dict[str, Any] = summ.to_json()
                base = None if wl.raw else res.summary(wl.name, "asyncio", metric.key)
                stats["relative"] = (
                    relative_speed(metric, summ.median, base.median) if base else None
                )
                rt = by_name.get(name)
                extra = res.overhead(wl, metric, rt) if rt is not None else None
                if extra is not None:
                    stats["overhead"] = {
                        "vs": rt.base if rt is not None else None, "median": extra.median,
                        "q1": extra.q1, "q3": extra.q3, "paired": extra.paired,
                    }
                entry["stats"][metric.key] = stats
            results[name] = entry
        workloads.append({
            "name": wl.name, "title": wl.title, "doc": wl.doc, "raw": wl.raw,
            "floor": wl.floor, "n": res.settings["n"].get(wl.name),
            "metrics": [
                {"key": m.key, "unit": m.unit, "higher_is_better": m.higher_is_better,
                 "label": m.label}
                for m in wl.metrics
            ],
            "results": results,
        })
    return {
        "schema": SCHEMA,
        "machine": res.machine,
        "settings": res.settings,
        "runtimes": [
            {"name": rt.name, "label": rt.label, "api": rt.api, "loop": rt.loop_module,
             "version": rt.version(), "description": rt.description}
            for rt in res.runtimes
        ],
        "workloads": workloads,
    }


def write_json(res: Results, path: str) -> None:
    """Write :func:`to_json` to *path*."""
    with open(path, "w") as fh:
        json.dump(to_json(res), fh, indent=1)
        fh.write("\n")

"""Counting, failure causes, and the docs/conformance.md sections."""

from __future__ import annotations

import datetime
import json
import os
import re
import tomllib
from collections import defaultdict
from typing import Any

CAUSES_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "causes.toml")

FOREIGN = "ran on asyncio's own event loop, not tidal's: not counted as a pass"


def classify(result: dict[str, Any]) -> str:
    """passed / failed / errors / skipped for one result."""
    outcome = result.get("outcome")
    if outcome in ("pass", "xfail"):
        return "failed" if "asyncio" in result.get("loops", ()) else "passed"
    if outcome in ("fail", "xpass"):
        return "failed"
    if outcome == "skip":
        return "skipped"
    return "errors"


def counts(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Totals for one module's results."""
    c = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for r in results.values():
        c[classify(r)] += 1
    c["total"] = sum(c.values())
    return c


def totals(runs: list[Any]) -> dict[str, int]:
    """Totals over modules (excluded modules count nothing)."""
    t = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "total": 0}
    for run in runs:
        for k, v in counts(run.results).items():
            t[k] += v
    return t


# -- causes ------------------------------------------------------------------

_rules: list[tuple[re.Pattern[str], str, str]] | None = None


def _load_rules() -> list[tuple[re.Pattern[str], str, str]]:
    global _rules
    if _rules is None:
        _rules = []
        if os.path.exists(CAUSES_PATH):
            with open(CAUSES_PATH, "rb") as f:
                data = tomllib.load(f)
            for rule in data.get("cause", []):
                _rules.append((re.compile(rule["match"], re.M | re.S),
                               rule["cause"], rule.get("area", "")))
    return _rules


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure"
                       r"|Cancelled|Timeout|Iteration|Group)\b.*)$", re.M)
_ADDR = re.compile(r"0x[0-9a-fA-F]+")
_TIDAL_FRAME = re.compile(r'File "[^"]*/tidal/(_core|_api|_io|_loop)[^"]*", line \d+, in (\w+)')


def _last_exception_line(detail: str) -> str:
    lines = [ln for ln in detail.splitlines() if ln and not ln.startswith((" ", "\t"))]
    matches = _EXC_LINE.findall(detail)
    line = matches[-1] if matches else (lines[-1] if lines else "(no detail)")
    line = _ADDR.sub("0x…", line)
    line = re.sub(r"\d{3,}", "N", line)
    return line[:200]


def area_of(detail: str) -> str:
    """Which part of tidal the traceback ends in (innermost tidal frame)."""
    frames = _TIDAL_FRAME.findall(detail)
    if not frames:
        return ""
    pkg = frames[-1][0]
    return {"_loop": "_core"}.get(pkg, pkg)


def cause_of(result: dict[str, Any]) -> tuple[str, str]:
    """(cause, area) of a result that did not pass."""
    outcome = result.get("outcome")
    detail = result.get("detail") or ""
    if outcome in ("pass", "xfail"):
        return FOREIGN, "harness"
    if outcome == "xpass":
        return "unexpected success: CPython expects this test to fail", ""
    if detail.startswith("HANG"):
        return "hung: " + detail.splitlines()[0][len("HANG: "):], area_of(detail)
    if detail.startswith("CRASH"):
        return "the worker process died during the test", ""
    if detail.startswith("not run"):
        return detail.splitlines()[0][:200], ""
    for pattern, template, area in _load_rules():
        m = pattern.search(detail)
        if m:
            text = template
            for i, group in enumerate(m.groups(), 1):
                text = text.replace(f"{{{i}}}", group or "")
            return text, area or area_of(detail)
    return _last_exception_line(detail), area_of(detail)


def failures_by_cause(runs: list[Any]) -> list[tuple[str, str, list[str]]]:
    """[(cause, area, [module.Class.test ...])], most frequent first."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for run in runs:
        for test_id, r in run.results.items():
            if classify(r) in ("failed", "errors"):
                cause, area = cause_of(r)
                full = test_id if test_id.startswith(run.name + ".") else f"{run.name}.{test_id}"
                groups[(cause, area)].append(full)
    return sorted(((c, a, sorted(ids)) for (c, a), ids in groups.items()),
                  key=lambda g: (-len(g[2]), g[0]))


def render_causes_text(runs: list[Any], limit: int = 15) -> str:
    """The top failure causes, for the terminal."""
    groups = failures_by_cause(runs)
    if not groups:
        return "no failures"
    out = ["top failure causes:"]
    for cause, area, ids in groups[:limit]:
        where = f" [{area}]" if area else ""
        out.append(f"  {len(ids):5d}  {cause}{where}")
    if len(groups) > limit:
        rest = sum(len(g[2]) for g in groups[limit:])
        out.append(f"  {rest:5d}  ... in {len(groups) - limit} other causes")
    return "\n".join(out)


def render_excluded_text(runs: list[Any]) -> str:
    """Each excluded test run by ``run.py --excluded``: outcome, then reason."""
    out = []
    for run in runs:
        for test_id in sorted(run.results):
            r = run.results[test_id]
            kind = classify(r)
            reason = run.excluded.get(test_id, "")
            if kind == "passed" and not r.get("loops"):
                what = "passes, but no event loop ran in it"
            elif kind == "passed":
                what = "PASSES on tidal"
            elif r.get("outcome") in ("pass", "xfail"):
                what = "ran asyncio's loop only"
            else:
                what = f"{kind}: {cause_of(r)[0]}"
            out.append(f"{run.name}.{test_id}\n    {what}\n    excluded: {reason}")
    return "\n".join(out) if out else "nothing excluded"


# -- docs -------------------------------------------------------------------

HEADER = """# Conformance: CPython's test_asyncio on tidal

`python conformance/run.py` runs the unmodified `test.test_asyncio` of the
interpreter that starts it against tidal, one worker process per module, and
prints as its last line
`conformance: P passed, F failed, E errors, S skipped of N (Python X.Y.Z)`.
Each section below is the last full run on that Python (a full run rewrites
its own section and keeps the others).  N counts every test that applies:
N = passed + failed + errors + skipped.

    python conformance/run.py                      # full run, updates this file
    python conformance/run.py --only test_tasks    # some modules (no docs update)
    python conformance/run.py --subset ci          # CI: bounded time, no docs update
    python conformance/run.py --src DIR            # test the tidal package in DIR/tidal
    python conformance/run.py --excluded           # run what is excluded, with the reasons

## How tidal is put in asyncio's place

* Every test module is loaded with its `asyncio` bound to a facade: names tidal
  exports are tidal's (`asyncio.Future`, `asyncio.Task`, `asyncio.gather`,
  `asyncio.Lock`...), the rest fall through to the real asyncio (each section
  lists the public names that fell through).
* tidal's event-loop policy is installed and is what a policy reset restores,
  so `asyncio.new_event_loop()`, `asyncio.run()` and `IsolatedAsyncioTestCase`
  run on tidal's loop.
* Mixins written once per implementation get a tidal instantiation
  (`TidalFutureTests`, `Tidal_Task_Future_Tests`, ...); per-selector loop
  classes get a class whose loop is `tidal.new_event_loop()`
  (`TidalEventLoopTests`, ...); classes that build asyncio's `BaseEventLoop` with
  a mocked selector get a tidal-loop version (for `TidalBaseEventLoopTests`
  one that ignores the mocks the tests assign to `_process_events` and
  `_write_to_self`: abstract in asyncio's bare loop, working methods in
  tidal's); `new_test_loop()` gives a virtual-time tidal loop
  (`conformance/_testloop.py`).  See `conformance/targets.py`.
* Every test records which event loops ran in it; a test that ran asyncio's
  own loop is never counted as a pass (it is listed as a failure).

## What is excluded

`conformance/exclusions.toml` names every module, class and test left out,
each with its reason.  An entry stays only if its tests cannot apply to
another implementation of asyncio's API: asyncio's own C/Python copies of a
mixin whose tidal instantiation runs, per-loop copies of tests that run on
tidal's loop, asyncio's private classes driven directly, child watchers,
Windows, and single tests that patch asyncio's modules or need its private
loop internals.  No test is excluded because tidal fails it; `python
conformance/run.py --excluded` runs them all on tidal and prints each outcome
next to its reason.  The *excluded* column counts the excluded tests of the
modules that run.

## Reading the numbers

*passed* includes CPython's expected failures that fail as expected; *failed*
includes unexpected successes and tests that ran on asyncio's loop; *errors*
includes hangs (per-test limit, 60 s in a full run) and worker crashes.
Failures are grouped by cause (`conformance/causes.toml` names known causes;
the rest are grouped by their last exception line), with the part of tidal
the traceback ends in.
"""

_BEGIN = "<!-- conformance:{v} begin -->"
_END = "<!-- conformance:{v} end -->"
_SECTION = re.compile(r"<!-- conformance:(\d+\.\d+) begin -->.*?<!-- conformance:\1 end -->\n?",
                      re.S)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def render_section(version: str, runs: list[Any], elapsed: float, jobs: int,
                   label: str = "") -> str:
    """One Python version's section of docs/conformance.md."""
    minor = ".".join(version.split(".")[:2])
    t = totals(runs)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    lines = [
        _BEGIN.format(v=minor),
        f"## Python {version}",
        "",
        f"Full run on {today} of {label or 'this checkout'}: {elapsed:.0f}s with "
        f"`--jobs {jobs}`.",
        "",
        f"**{t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
        f"{t['skipped']} skipped of {t['total']}** ({_pct(t['passed'], t['total'])} pass)",
        "",
        "| module | passed | failed | errors | skipped | of | excluded | time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    excluded_modules = []
    for run in sorted(runs, key=lambda r: r.name):
        if run.excluded_reason is not None:
            excluded_modules.append(run)
            continue
        c = counts(run.results)
        lines.append(
            f"| {run.name} | {c['passed']} | {c['failed']} | {c['errors']} | {c['skipped']} "
            f"| {c['total']} | {len(run.excluded)} | {run.seconds:.0f}s |"
        )
    lines.append(
        f"| **total** | **{t['passed']}** | **{t['failed']}** | **{t['errors']}** "
        f"| **{t['skipped']}** | **{t['total']}** "
        f"| {sum(len(r.excluded) for r in runs)} | |"
    )
    if excluded_modules:
        lines += ["", "Excluded modules: " + ", ".join(
            f"{r.name} ({r.excluded_reason})" for r in excluded_modules) + "."]
    used = sorted(set().union(*(getattr(r, "fallthrough", set()) for r in runs)))
    if used:
        lines += ["", "Public asyncio names the tests used that tidal does not export, so "
                  "asyncio's own object ran (on tidal's loop): " + ", ".join(
                      f"`{n}`" for n in used) + "."]
    notes = [(r.name, n) for r in runs for n in r.notes]
    if notes:
        lines += ["", "Harness notes:", ""]
        lines += [f"- {name}: {_one_line(n)}" for name, n in notes]
    groups = failures_by_cause(runs)
    lines += ["", f"### Remaining failures on {minor}, by cause", ""]
    if not groups:
        lines.append("None.")
    for cause, area, ids in groups:
        where = f" — {area}" if area else ""
        lines.append(f"- **{_md(cause)}**{where} ({len(ids)}): " + _compact(ids))
    lines.append(_END.format(v=minor))
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return _md(" ".join(text.split())[:300])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace("<", "&lt;")


def _compact(ids: list[str]) -> str:
    """``mod.Class.a``, ``mod.Class.b`` -> ``mod.Class: a, b``."""
    by_class: dict[str, list[str]] = defaultdict(list)
    for test_id in ids:
        head, _, name = test_id.rpartition(".")
        by_class[head].append(name)
    parts = [f"`{head}`: " + ", ".join(names) for head, names in sorted(by_class.items())]
    return "; ".join(parts)


def update_docs(path: str, version: str, runs: list[Any], elapsed: float, jobs: int,
                label: str = "") -> None:
    """Replace this version's section of *path*, keeping the others."""
    minor = ".".join(version.split(".")[:2])
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    found = list(_SECTION.finditer(text))
    sections = {m.group(1): m.group(0) for m in found}
    header = text[: found[0].start()] if found else (text or HEADER)
    if not header.strip():
        header = HEADER
    # Whatever follows the last section (other suites' results) is kept too.
    trailer = text[found[-1].end():].strip("\n") if found else ""
    sections[minor] = render_section(version, runs, elapsed, jobs, label)
    ordered = sorted(sections, key=lambda v: tuple(int(x) for x in v.split(".")))
    body = header.rstrip("\n") + "\n\n" + "\n".join(sections[v] for v in ordered)
    if trailer:
        body += "\n" + trailer + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(body)


def write_json(path: str, version: str, runs: list[Any]) -> None:
    """Every result, for tooling."""
    data = {
        "python": version,
        "modules": {
            r.name: {
                "excluded_reason": r.excluded_reason,
                "excluded": r.excluded,
                "notes": r.notes,
                "seconds": r.seconds,
                "results": {
                    t: {"outcome": res.get("outcome"), "class": classify(res),
                        "loops": res.get("loops", []),
                        "cause": cause_of(res)[0] if classify(res) in ("failed", "errors")
                        else None,
                        "detail": res.get("detail", "") if res.get("outcome") != "pass" else ""}
                    for t, res in r.results.items()
                },
            }
            for r in runs
        },
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)

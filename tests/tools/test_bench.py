"""``python -m tidal bench``: runs end to end, reports sanely.  No timings asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tidal._tools.bench import registry, report, runner, stats, worker
from tidal._tools.bench.registry import REQ_PER_S, US_PER_OP, all_workloads, get_runtime


def test_quick_only_one_workload_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "bench", "--quick", "--only", "call_soon",
         "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "machine:" in done.stdout and "call_soon" in done.stdout
    data = json.loads(out.read_text())
    assert data["schema"] == report.SCHEMA
    for key in ("cpu", "cores", "python", "tidal", "uvloop", "rloop", "load_average"):
        assert key in data["machine"]
    assert data["settings"]["quick"] is True
    assert data["settings"]["order"] == "interleaved"
    names = [rt["name"] for rt in data["runtimes"]]
    assert names[0] == "asyncio" and "tidal-loop" in names and "tidal" in names
    by_name = {wl["name"]: wl for wl in data["workloads"]}
    assert set(by_name) == {"call_soon", "floor_callback"}
    workload = by_name["call_soon"]
    assert workload["floor"] == "floor_callback"
    assert workload["metrics"] == [
        {"key": "time", "unit": "us/op", "higher_is_better": False, "label": ""}
    ]
    assert set(workload["results"]) == set(names)
    baseline = workload["results"]["asyncio"]
    assert baseline["status"] == "ok"
    samples = baseline["samples"]["time"]
    assert samples and all(isinstance(v, float) and v > 0 for v in samples)
    assert baseline["stats"]["time"]["relative"] == pytest.approx(1.0)
    assert baseline["stats"]["time"]["count"] == len(samples)
    for result in workload["results"].values():
        assert result["status"] in ("ok", "n/a", "error", "timeout")
    assert by_name["floor_callback"]["results"]["raw"]["status"] == "ok"


def test_list_and_bad_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "bench", "--list"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0
    assert "spawn_gather" in done.stdout and "tidal-loop" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "bench", "--only", "no_such_workload"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "no_such_workload" in done.stderr


def test_every_workload_documents_its_op() -> None:
    workloads = all_workloads()
    names = {wl.name for wl in workloads}
    for wl in workloads:
        assert wl.doc.startswith("One op:"), wl.name
        assert wl.floor is None or wl.floor in names, wl.name
        assert wl.quick_n <= wl.n


def test_quick_selection_skips_slow_variants_but_keeps_floors() -> None:
    quick = [wl.name for wl in runner.select_workloads(None, quick=True)]
    full = [wl.name for wl in runner.select_workloads(None, quick=False)]
    assert "tcp_echo_streams_64k" in full and "tcp_echo_streams_64k" not in quick
    assert quick.index("floor_coro_switch") == quick.index("sleep0_switch") + 1
    assert quick.count("floor_sleeping_coros") == 1
    chosen = runner.select_workloads(["tcp_echo_*_64k"], quick=True, floors=False)
    assert [wl.name for wl in chosen] == ["tcp_echo_streams_64k", "tcp_echo_protocols_64k"]
    with pytest.raises(ValueError):
        runner.select_workloads(["nope"], quick=True)


def test_plan_interleaves_runtimes() -> None:
    wl = registry.get_workload("call_soon")
    floor = registry.get_workload("floor_callback")
    rts = [get_runtime("asyncio"), get_runtime("tidal")]
    steps = [(w.name, r) for w, r in runner.plan([wl, floor], rts, repeat=2)]
    assert steps == [
        ("call_soon", "asyncio"), ("call_soon", "tidal"), ("floor_callback", "raw"),
        ("call_soon", "asyncio"), ("call_soon", "tidal"), ("floor_callback", "raw"),
    ]
    # A floor shared by two workloads is measured once; one alone gets its own rounds.
    echo = [registry.get_workload(n) for n in (
        "tcp_echo_streams_1k", "floor_tcp_echo_1k", "tcp_echo_protocols_1k", "floor_deque")]
    steps = [(w.name, r) for w, r in runner.plan(echo, rts[:1], repeat=1)]
    assert steps == [
        ("tcp_echo_streams_1k", "asyncio"), ("floor_tcp_echo_1k", "raw"),
        ("tcp_echo_protocols_1k", "asyncio"), ("floor_deque", "raw"),
    ]


def test_failure_classification() -> None:
    import tidal

    try:
        tidal.this_does_not_exist  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert worker.classify_failure(exc)[0] == "n/a"
    assert worker.classify_failure(NotImplementedError())[0] == "n/a"
    try:
        None.x  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert worker.classify_failure(exc)[0] == "error"
    assert worker.classify_failure(RuntimeError("bug")) == ("error", "RuntimeError: bug")


def test_cell_merging_and_stats() -> None:
    cell = stats.Cell()
    cell.add({"status": "ok", "samples": {"time": [3.0, 1.0]}})
    cell.add({"status": "timeout", "reason": "slow"})
    cell.add({"status": "ok", "samples": {"time": [2.0]}})
    assert cell.status == "ok" and cell.reasons == ["slow"]
    summ = stats.summarize(cell.samples["time"])
    assert summ is not None
    assert (summ.median, summ.low, summ.high, summ.count) == (2.0, 1.0, 3.0, 3)
    assert stats.relative_speed(US_PER_OP, 2.0, 4.0) == 2.0
    assert stats.relative_speed(REQ_PER_S, 2.0, 4.0) == 0.5
    failed = stats.Cell()
    failed.add({"status": "n/a", "reason": "missing"})
    failed.add({"status": "error", "reason": "bug"})
    assert failed.status == "error"


def _fake_results() -> report.Results:
    rts = [get_runtime("asyncio"), get_runtime("tidal")]
    wl, floor = registry.get_workload("call_soon"), registry.get_workload("floor_callback")
    cells: dict[tuple[str, str], stats.Cell] = {}
    records: list[tuple[str, str, dict[str, Any]]] = [
        ("call_soon", "asyncio", {"status": "ok", "samples": {"time": [1.0, 1.2]}}),
        ("call_soon", "tidal", {"status": "n/a", "reason": "no call_soon here"}),
        ("floor_callback", "raw", {"status": "ok", "samples": {"time": [0.1]}}),
    ]
    for name, rt, record in records:
        cells.setdefault((name, rt), stats.Cell()).add(record)
    machine = report.machine_info(rts)
    settings = {"quick": True, "n": {"call_soon": 10, "floor_callback": 10}}
    return report.Results(machine, settings, rts, [wl, floor], cells)


def test_table_and_markdown() -> None:
    res = _fake_results()
    table = report.format_table(res)
    assert "call_soon" in table and "x1.00" in table and "n/a" in table
    assert "no call_soon here" in table  # the reason is explained
    assert "0.10" in table  # the floor column
    markdown = report.format_markdown(res)
    assert markdown.splitlines()[0].startswith("| workload | unit | asyncio | tidal |")


def test_chart_drawn_or_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tidal._tools.bench.chart import draw_chart

    res = _fake_results()
    path = tmp_path / "chart.png"
    message = draw_chart(res, str(path))
    if "skipped" not in message:
        assert path.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "matplotlib is not installed" in draw_chart(res, str(tmp_path / "no.png"))
    assert not (tmp_path / "no.png").exists()


@pytest.mark.parametrize("name", ["http_protocols", "tcp_echo_streams_1k"])
def test_network_workload_with_client_process(name: str) -> None:
    result = worker.measure(name, "asyncio", n=150, inner=1)
    assert result["status"] == "ok", result
    assert result["samples"]["rate"][0] > 0


@pytest.mark.parametrize("name", ["floor_http", "floor_socketpair", "floor_thread_post"])
def test_floors_run(name: str) -> None:
    result = worker.measure(name, "raw", n=150, inner=1, warmup=False)
    assert result["status"] == "ok", result


def test_cell_with_failed_runs_is_marked() -> None:
    # A timeout among the repetitions: the figure stands, marked with the count.
    rts = [get_runtime("asyncio"), get_runtime("tidal")]
    wl = registry.get_workload("call_soon")
    cells: dict[tuple[str, str], stats.Cell] = {}
    failed: dict[tuple[str, str], int] = {}
    for rt, record in [
        ("asyncio", {"status": "ok", "samples": {"time": [1.0]}}),
        ("tidal", {"status": "ok", "samples": {"time": [0.5]}}),
        ("asyncio", {"status": "ok", "samples": {"time": [1.0]}}),
        ("tidal", {"status": "timeout", "reason": "no result within 60 s"}),
        ("asyncio", {"status": "ok", "samples": {"time": [1.0]}}),
        ("tidal", {"status": "ok", "samples": {"time": [0.5]}}),
    ]:
        runner.add_record(cells, failed, ("call_soon", rt), record)
    assert failed == {("call_soon", "tidal"): 1}
    res = report.Results(report.machine_info(rts), {"quick": True, "n": {"call_soon": 10}},
                         rts, [wl], cells, failed)
    assert res.failed_runs("call_soon", "tidal") == (1, 3)
    assert res.failed_runs("call_soon", "asyncio") == (0, 3)
    table = report.format_table(res)
    (row,) = [line for line in table.splitlines() if line.startswith("call_soon")]
    pm = "+-" if "+-" in row else "\N{PLUS-MINUS SIGN}"  # as the terminal can print it
    assert row.endswith(f"  1.00 {pm}0% x1.00  0.50 {pm}0% x2.00 [1/3 failed]")
    note = ("call_soon on tidal: 1 of 3 runs failed (no result within 60 s); "
            "the figure is from the other 2")
    assert note in table
    markdown = report.format_markdown(res)
    pm = "\N{PLUS-MINUS SIGN}"
    assert f"| 1.00 {pm}0% x1.00 | 0.50 {pm}0% x2.00 [1/3 failed] |" in markdown
    assert f"- {note}" in markdown
    data = report.to_json(res)
    (entry,) = data["workloads"]
    assert entry["results"]["tidal"]["failed_runs"] == 1
    assert entry["results"]["tidal"]["runs"] == 3
    assert entry["results"]["asyncio"]["failed_runs"] == 0

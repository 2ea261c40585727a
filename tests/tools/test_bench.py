"""``python -m tidal bench``: runs end to end, reports sanely.  No timings asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tidal._tools.bench import compiled, registry, report, runner, stats, wl_frameworks, worker
from tidal._tools.bench.registry import REQ_PER_S, US_PER_OP, all_workloads, get_runtime


def test_quick_only_one_workload_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        # --no-compiled: building the compiled columns takes minutes.
        [sys.executable, "-m", "tidal", "bench", "--quick", "--only", "call_soon",
         "--no-compiled", "--json", str(out)],
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


# --- the compiled columns (the build itself is too slow for a test: its pieces are tested)


def test_compiled_runtimes_are_selected_by_default_and_can_be_left_out() -> None:
    names = [rt.name for rt in registry.RUNTIMES]
    assert "tidal-compiled" in names and "tidal-loop-compiled" in names
    assert get_runtime("tidal-compiled").label == "tidal (compiled)"
    assert get_runtime("tidal-loop-compiled").api == "asyncio"
    run, skipped = runner.select_runtimes(None)
    assert {rt.name for rt in run + skipped} >= {"tidal-compiled", "tidal-loop-compiled"}
    run, skipped = runner.select_runtimes(None, compiled=False)
    assert not any(rt.compiled for rt in run + skipped)
    run, skipped = runner.select_runtimes(["tidal-compiled"], compiled=False)
    assert [rt.name for rt in run + skipped] == ["asyncio", "tidal-compiled"]


def test_compiled_build_unavailable_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rt = get_runtime("tidal-compiled")
    if sys.version_info < (3, 12):
        assert not rt.available()
        assert "3.12" in rt.unavailable_reason()
        _, skipped = runner.select_runtimes(["tidal-compiled"])
        assert [r.name for r in skipped] == ["tidal-compiled"]
        return
    # A checkout to compile, also where the suite runs on an installed wheel (CI).
    monkeypatch.setattr(compiled, "source_root", lambda: _fake_tree(tmp_path))
    monkeypatch.setattr(compiled, "_compiler", lambda: None)
    assert compiled.unavailable_reason() == "no C compiler found"
    assert not rt.available() and rt.unavailable_reason() == "no C compiler found"
    monkeypatch.setattr(compiled, "source_root", lambda: None)
    assert "not run from a checkout" in str(compiled.unavailable_reason())


def _fake_tree(root: Path) -> Path:
    for name, text in [("setup.py", "x = 1\n"), ("pyproject.toml", "[project]\n"),
                       ("src/tidal/__init__.py", "a = 1\n"), ("src/tidal/_core/m.py", "b = 2\n")]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_source_hash_follows_the_build_inputs(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path)
    first = compiled.source_hash(root)
    assert first == compiled.source_hash(root)
    (root / "src/tidal/__pycache__").mkdir()
    (root / "src/tidal/__pycache__/m.pyc").write_bytes(b"junk")
    assert compiled.source_hash(root) == first  # not an input
    (root / "src/tidal/_core/m.py").write_text("b = 3\n")
    assert compiled.source_hash(root) != first
    (root / "src/tidal/_core/m.py").write_text("b = 2\n")
    (root / "setup.py").write_text("x = 2\n")
    assert compiled.source_hash(root) != first


def test_build_dir_is_per_interpreter_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = _fake_tree(tmp_path / "tree")
    monkeypatch.setenv("TIDAL_BENCH_CACHE", str(tmp_path / "cache"))
    where = compiled.build_dir(root)
    assert where.parent == tmp_path / "cache"
    assert where.name.endswith(compiled.source_hash(root))
    monkeypatch.delenv("TIDAL_BENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiled.cache_root() == tmp_path / "xdg" / "tidal-bench"


def test_cached_build_is_reused_without_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sysconfig

    root = _fake_tree(tmp_path / "tree")
    monkeypatch.setenv("TIDAL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compiled, "source_root", lambda: root)
    monkeypatch.setattr(compiled, "unavailable_reason", lambda: None)

    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("built although the cache has the build")

    monkeypatch.setattr(compiled.subprocess, "run", no_build)
    target = compiled.build_dir(root)
    core = target / compiled.SITE / "tidal" / "_core"
    core.mkdir(parents=True)
    (core / ("tasks" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))).write_bytes(b"")
    (target / "BUILD-OK").write_text("tidal.whl\n")
    out = io.StringIO()
    result = compiled.ensure_build(out)
    assert result.site == target / compiled.SITE
    assert "cached in" in out.getvalue() and str(target) in out.getvalue()


def test_unavailable_build_is_a_note_not_a_build(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(compiled, "unavailable_reason", lambda: "no C compiler found")
    result = compiled.ensure_build(io.StringIO())
    assert result.site is None and result.note == "no C compiler found"


def test_pure_wheel_reason_is_setup_pys() -> None:
    log = "noise\ntidal build: no C compiler found: building the pure-Python package\n"
    assert compiled._why_pure(log) == "no C compiler found: building the pure-Python package"
    assert "no compiled module" in compiled._why_pure("")


def test_compiled_label_refuses_the_pure_build() -> None:
    import tidal

    if tidal.compiled:
        pytest.skip("this interpreter imports the compiled build")
    result = worker.measure("call_soon", "tidal-compiled", n=10, inner=1, warmup=False)
    assert result == {"status": "error", "reason": "the pure build of tidal was imported"}


def test_worker_puts_the_build_first_on_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    worker._bootstrap("tidal-compiled", "/some/build/site")
    assert sys.path[0] == "/some/build/site"
    assert Path(sys.path[1], "tidal", "_tools", "bench", "worker.py").is_file()


# --- framework workloads: selection, skipping, the generator's output


def test_framework_workloads_are_registered_long_and_skippable() -> None:
    for name, needs in (("aiohttp_hello", {"aiohttp"}),
                        ("uvicorn_hello", {"uvicorn", "starlette", "httptools"})):
        wl = registry.get_workload(name)
        assert set(wl.requires) == needs and not wl.quick and wl.metrics == (REQ_PER_S,)
        assert wl.params["generator"] in wl.title
    quick = [wl.name for wl in runner.select_workloads(None, quick=True)]
    assert "aiohttp_hello" not in quick
    full = [wl.name for wl in runner.select_workloads(None, quick=False)]
    assert "aiohttp_hello" in full and "uvicorn_hello" in full


def test_missing_framework_is_skipped_with_a_note() -> None:
    wl = registry.get_workload("call_soon")
    needy = registry.Workload("needs_nothing_here", "t", wl.fn, 1, 1,
                              requires=("tidal_no_such_module_abc",))
    runnable, notes = runner.split_runnable([wl, needy])
    assert runnable == [wl]
    assert notes == ["needs_nothing_here skipped: tidal_no_such_module_abc not installed"]


def test_plan_caps_rounds_of_long_workloads() -> None:
    wl = registry.get_workload("aiohttp_hello")
    assert wl.max_repeat == 3
    rts = [get_runtime("asyncio"), get_runtime("tidal")]
    assert len(list(runner.plan([wl], rts, repeat=5))) == 6
    assert len(list(runner.plan([wl], rts, repeat=1))) == 2


WRK_OUTPUT = b"""Running 3s test @ http://127.0.0.1:40000/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.71ms  224.11us   6.08ms   92.21%
    Req/Sec    29.31k     1.02k   30.38k    83.33%
  87512 requests in 3.00s, 13.27MB read
Requests/sec:  29162.83
Transfer/sec:      4.42MB
"""


def test_wrk_output_parsed() -> None:
    assert wl_frameworks.parse_rate("wrk", WRK_OUTPUT) == 29162.83
    bad = WRK_OUTPUT.replace(b"Requests/sec", b"  Non-2xx or 3xx responses: 12\nRequests/sec")
    with pytest.raises(RuntimeError, match=r"^wrk saw 12 non-2xx responses$"):
        wl_frameworks.parse_rate("wrk", bad)
    with pytest.raises(RuntimeError, match=r"^wrk printed no rate: b'unable to connect'$"):
        wl_frameworks.parse_rate("wrk", b"unable to connect")
    assert wl_frameworks.parse_rate("loadgen", b'{"requests": 10, "rate": 5.0}\n') == 5.0


def test_generator_commands_and_pinning() -> None:
    cmd = wl_frameworks.generator_command("wrk", 8080, 3.0)
    assert cmd == ["wrk", "-t1", "-c50", "-d3s", "http://127.0.0.1:8080/"]
    cmd = wl_frameworks.generator_command("loadgen", 8080, 0.5)
    assert "--conns" in cmd and cmd[cmd.index("--conns") + 1] == "50"
    assert wl_frameworks.pinned(["wrk"], None) == ["wrk"]
    wrapped = wl_frameworks.pinned(["true"], {0})
    assert wrapped[-1] == "true" and "sched_setaffinity" in wrapped[-2]
    assert subprocess.run(wrapped, timeout=30).returncode == 0
    split = wl_frameworks.cpu_split()
    if split is not None:
        server, client = split
        assert len(server) == len(client) == 1 and not server & client


@pytest.mark.parametrize("name", ["aiohttp_hello", "uvicorn_hello"])
def test_framework_workload_serves(name: str) -> None:
    wl = registry.get_workload(name)
    if wl.missing():
        pytest.skip(f"{', '.join(wl.missing())} not installed")
    # In a worker process: the server pins itself to one CPU.
    result = runner.run_one(wl, "asyncio", n=1000, inner=1, timeout=60)
    assert result["status"] == "ok", result
    assert result["samples"]["rate"][0] > 0


def test_old_builds_are_pruned(tmp_path: Path) -> None:
    import os

    builds = []
    for i, name in enumerate(["abi-1", "abi-2", "abi-3", "abi-4", "other-1"]):
        (tmp_path / name).mkdir()
        (tmp_path / name / "BUILD-OK").write_text("")
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
        builds.append(tmp_path / name)
    (tmp_path / "abi-5.partial").mkdir()  # unfinished: not a build, left alone
    removed = compiled.prune(builds[0], kept=2)
    # The one just made is kept even when older; then the newest.
    assert sorted(p.name for p in removed) == ["abi-2", "abi-3"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["abi-1", "abi-4", "abi-5.partial", "other-1"]


def test_only_missing_frameworks_is_a_clean_skip(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    wl = registry.get_workload("call_soon")
    needy = registry.Workload("needs_nothing_here", "t", wl.fn, 1, 1,
                              requires=("tidal_no_such_module_abc",))
    monkeypatch.setattr(runner, "select_workloads", lambda *args, **kwargs: [needy])
    options = argparse.Namespace(
        list=False, quick=True, only=["needs_nothing_here"], no_floors=False, runtime=None,
        no_compiled=True, repeat=None, json=None, markdown=None, chart=None,
    )
    assert runner.bench_main(options) == 0
    out = capsys.readouterr().out
    assert "needs_nothing_here skipped: tidal_no_such_module_abc not installed" in out


def test_instrumented_runtimes_are_opt_in() -> None:
    default, _ = runner.select_runtimes(None)
    assert [rt for rt in default if rt.instrument] == []
    chosen, _ = runner.select_runtimes(["tidal", "tidal+watchdog", "tidal+trace"])
    assert [rt.name for rt in chosen] == ["asyncio", "tidal", "tidal+watchdog", "tidal+trace"]
    for rt in registry.RUNTIMES:
        assert rt.default == (rt.base is None) == (not rt.instrument), rt.name
        if rt.base is not None:
            assert get_runtime(rt.base).loop_module == rt.loop_module
        if rt.loop_module == "tidal":  # their worker imports tidal for real
            assert rt.name in worker.TIDAL_RUNTIMES
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "bench", "--list"],
        capture_output=True, text=True, timeout=60,
    )
    assert "tidal+watchdog" in done.stdout and "[only with --runtime]" in done.stdout


@pytest.mark.parametrize("name", ["tidal+watchdog", "tidal-loop+watchdog", "tidal+trace"])
def test_instrumented_runtime_measures_and_turns_its_tool_off(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tidal._tools import trace, watchdog

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the trace file goes
    monkeypatch.setattr("tempfile.tempdir", None)
    calls: list[Any] = []

    def spy(module: Any, attr: str) -> None:
        real = getattr(module, attr)

        def called(*args: Any, **kwargs: Any) -> Any:
            calls.append((attr, args))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, attr, called)

    spy(watchdog, "watch_blocking")
    spy(trace, "start_trace")
    spy(trace, "stop_trace")
    result = worker.measure("sleep0_switch", name, n=2_000, inner=1)
    assert result["status"] == "ok", result
    assert result["samples"]["time"][0] > 0
    if "watchdog" in name:  # on at the default threshold, then off
        assert calls == [("watch_blocking", (0.1,)), ("watch_blocking", (None,))]
    else:
        assert [c[0] for c in calls] == ["start_trace", "stop_trace"]
    assert watchdog.watching() is None and watchdog._thread[0] is None
    assert trace._active[0] is None
    assert list(tmp_path.iterdir()) == []  # the trace was written and removed


def test_watchdog_threshold_reaches_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    # --watchdog-threshold: the runner exports it, the worker's watchdog uses it.
    from tidal._tools import watchdog
    from tidal._tools.bench.registry import WATCHDOG_THRESHOLD_ENV

    calls: list[Any] = []
    real = watchdog.watch_blocking
    monkeypatch.setattr(
        watchdog, "watch_blocking", lambda *a, **k: (calls.append(a), real(*a, **k))[1],
    )
    monkeypatch.setenv(WATCHDOG_THRESHOLD_ENV, "0.004")
    result = worker.measure("sleep0_switch", "tidal+watchdog", n=2_000, inner=1)
    assert result["status"] == "ok", result
    assert calls == [(0.004,), (None,)]


def test_watchdog_threshold_must_be_positive() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidal", "bench", "--only", "call_soon", "--no-compiled",
         "--runtime", "tidal+watchdog", "--watchdog-threshold", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "tidal bench: --watchdog-threshold must be a positive number of seconds\n"
    )


def test_overhead_pairs_the_rounds() -> None:
    # Sample i of two cells comes from the same round: paired, a drift cancels.
    paired = stats.overhead(US_PER_OP, [1.1, 2.2, 3.3], [1.0, 2.0, 3.0])
    assert paired is not None and paired.paired
    assert paired.median == pytest.approx(0.1) and paired.q1 == pytest.approx(0.1)
    unpaired = stats.overhead(US_PER_OP, [1.1, 2.2], [1.0, 2.0, 3.0])
    assert unpaired is not None and not unpaired.paired and unpaired.q1 is None
    assert unpaired.median == pytest.approx(1.65 / 2.0 - 1)
    # A rate: 10% fewer requests per second is 11% more time per request.
    rate = stats.overhead(REQ_PER_S, [90.0], [100.0])
    assert rate is not None and rate.median == pytest.approx(100 / 90 - 1)
    assert stats.overhead(US_PER_OP, [], [1.0]) is None


def test_overhead_table() -> None:
    rts = [get_runtime(n) for n in ("asyncio", "tidal", "tidal+watchdog", "tidal+trace")]
    wl = registry.get_workload("call_soon")
    cells: dict[tuple[str, str], stats.Cell] = {}
    failed: dict[tuple[str, str], int] = {}
    for rt, samples in [
        ("asyncio", [2.0, 2.0]), ("tidal", [1.0, 1.2]),
        ("tidal+watchdog", [1.01, 1.212]), ("tidal+trace", [3.0, 3.6]),
    ]:
        runner.add_record(cells, failed, ("call_soon", rt),
                          {"status": "ok", "samples": {"time": samples}})
    res = report.Results(report.machine_info(rts), {"quick": True, "n": {"call_soon": 10}},
                         rts, [wl], cells, failed)
    assert [(b.name, [m.name for m in ms]) for b, ms in res.overhead_groups()] == [
        ("tidal", ["tidal+watchdog", "tidal+trace"])
    ]
    text = report.format_overhead(res)
    (row,) = [line for line in text.splitlines() if line.startswith("call_soon")]
    assert "+1.0% [+1.0%, +1.0%]" in row and "+200.0% [+200.0%, +200.0%]" in row
    assert "x" not in row.split("µs/op" if "µs/op" in row else "us/op")[1]  # no xN here
    markdown = report.format_markdown(res)
    head = "| workload | unit | tidal | tidal+watchdog overhead | tidal+trace overhead |"
    assert head in markdown
    data = report.to_json(res)
    results = data["workloads"][0]["results"]
    assert results["tidal+watchdog"]["stats"]["time"]["overhead"]["vs"] == "tidal"
    assert results["tidal+trace"]["stats"]["time"]["overhead"]["median"] == pytest.approx(2.0)
    assert "overhead" not in results["tidal"]["stats"]["time"]
    # Without an instrumented runtime there is no overhead table at all.
    plain = report.Results(res.machine, res.settings, rts[:2], [wl], cells, failed)
    assert report.format_overhead(plain) == ""

"""anyio's own test suite, asyncio backend, on tidal's loop and on asyncio's (the oracle).

The sdist of anyio ``ANYIO_VERSION`` carries its tests.  It is fetched once
(``pip download``) into a cache under $TMPDIR, unpacked, and its suite runs
twice, concurrently, in subprocesses: with ``TIDAL_ANYIO_LOOP=tidal`` and
with ``TIDAL_ANYIO_LOOP=asyncio`` (see ``anyio_suite_plugin.py``: the same
test ids either way, trio/uvloop/eager-factory variants deselected).  Every
test that passes on asyncio must pass on tidal.  A divergence is run again,
alone, on tidal before it counts: the suite has timing-sensitive tests and
shares two cores with the rest of CI.

To reproduce by hand (what ``run_suite`` does)::

    cd $TMPDIR/tidal-anyio-suite/anyio-4.16.0
    PYTHONPATH=src:<tidal>/tests/integration TIDAL_ANYIO_LOOP=tidal \\
        python -m pytest tests -p anyio_suite_plugin -p no:cacheprovider -q

The numbers and the remaining differences are in docs/conformance.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ANYIO_VERSION = "4.16.0"
HERE = Path(__file__).resolve().parent

# anyio's "test" dependency group, less coverage, uvloop/winloop and trio
# (module name -> distribution).  They are in tidal's integration extra.
REQUIREMENTS = {
    "anyio": f"anyio=={ANYIO_VERSION}",  # for its pytest11 entry point
    "blockbuster": "blockbuster>=1.5.29",
    "hypothesis": "hypothesis>=4.18.2",
    "psutil": "psutil>=5.9",
    "pytest_mock": "pytest-mock>=3.14",
    "pytest_timeout": "pytest-timeout>=2.4.0",
    "trustme": "trustme>=1.0.0",
    "truststore": "truststore>=0.9.1",
}

# Divergences known to come from tidal's core, with the reason; reported
# but not failed.  Keep empty unless docs/conformance.md explains the entry.
KNOWN: dict[str, str] = {}

# One run takes about a minute on a quiet 2-core machine; anyio's own
# per-test timeout (20 s) bounds a hang, this bounds the whole.
SUITE_TIMEOUT = 600.0


def cache_dir() -> Path:
    """Where the sdist is kept: $TIDAL_ANYIO_CACHE, else one directory under $TMPDIR.

    Shared by the venvs of all Pythons (the sources are the same), so CI
    fetches it once.
    """
    env = os.environ.get("TIDAL_ANYIO_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "tidal-anyio-suite"


def fetch_suite(cache: Path) -> Path:
    """The unpacked sdist (fetched now unless already there); skips if it cannot be had."""
    root = cache / f"anyio-{ANYIO_VERSION}"
    if (root / "tests" / "conftest.py").is_file():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "--disable-pip-version-check", "-q", "-d", tmp, f"anyio=={ANYIO_VERSION}"],
                capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot fetch the anyio {ANYIO_VERSION} sdist: {exc!r}")
        sdists = list(Path(tmp).glob("anyio-*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            pytest.skip(f"cannot fetch the anyio {ANYIO_VERSION} sdist: "
                        f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(tmp, filter="data")
        # Renamed into place whole, so a half-unpacked tree is never reused.
        shutil.rmtree(root, ignore_errors=True)
        os.replace(Path(tmp) / root.name, root)
    return root


def ensure_requirements(cache: Path) -> Path | None:
    """A directory to add to the path with what is missing here, or None if nothing is."""
    missing = [dist for module, dist in REQUIREMENTS.items()
               if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    target = cache / f"deps-py{sys.version_info[0]}{sys.version_info[1]}"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--target", str(target), *missing],
        capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"anyio's test requirements {missing} are missing (install tidal's "
                    f"'integration' extra) and could not be installed:\n{proc.stderr[-2000:]}")
    return target


def start_suite(root: Path, loop: str, out: Path, deps: Path | None,
                ids: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start anyio's suite on *loop* ('tidal' or 'asyncio'); results go to *out*.*."""
    path = [str(root / "src"), str(HERE)]
    if deps is not None:
        path.append(str(deps))
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TIDAL_ANYIO_LOOP": loop,
           "TIDAL_ANYIO_REPORT": str(out.with_suffix(".json"))}
    env.pop("PYTEST_ADDOPTS", None)
    args = [sys.executable, "-m", "pytest", *(ids or ["tests"]), "-p", "anyio_suite_plugin",
            "-p", "no:cacheprovider", "-q", "--tb=short", f"--junitxml={out.with_suffix('.xml')}"]
    with open(out.with_suffix(".log"), "wb") as log:  # the child keeps its own copy
        return subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes], out: Path) -> dict[str, tuple[str, str]]:
    """Wait for a run; its outcomes: test id -> (passed|failed|skipped, failure text)."""
    try:
        proc.wait(timeout=SUITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"anyio's suite did not finish in {SUITE_TIMEOUT:.0f} s; see {out}.log")
    xml = out.with_suffix(".xml")
    if not xml.is_file():
        log = out.with_suffix(".log").read_text(errors="replace")
        pytest.fail(f"anyio's suite wrote no results (exit {proc.returncode}):\n{log[-3000:]}")
    return outcomes(xml)


def outcomes(xml: Path) -> dict[str, tuple[str, str]]:
    """Per-test outcome from a junit file; a failure in any phase fails the test."""
    result: dict[str, tuple[str, str]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        state, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                state = "failed"
                text = f"{child.get('message') or ''}\n{child.text or ''}".strip()
                break
            if child.tag == "skipped":
                state = "skipped"
        if result.get(test_id, ("",))[0] != "failed":
            result[test_id] = (state, text)
    return result


def node_id(test_id: str) -> str:
    """A junit id (``tests.test_x.TestY::test_z[p]``) as a pytest node id."""
    classname, name = test_id.split("::", 1)
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):
        module = Path(*parts[:i]).with_suffix(".py")
        if module.name.startswith("test_"):
            return "::".join([module.as_posix(), *parts[i:], name])
    return test_id


def tally(results: dict[str, tuple[str, str]]) -> str:
    counts = {state: 0 for state in ("passed", "failed", "skipped")}
    for state, _ in results.values():
        counts[state] += 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())


@pytest.mark.timeout(2 * SUITE_TIMEOUT + 300)
def test_anyio_suite_on_tidal(tmp_path: Path) -> None:
    """Every anyio test that passes on asyncio passes on tidal."""
    cache = cache_dir()
    root = fetch_suite(cache)
    deps = ensure_requirements(cache)
    started = time.monotonic()
    runs = {loop: start_suite(root, loop, tmp_path / loop, deps) for loop in ("tidal", "asyncio")}
    try:
        results = {loop: finish(proc, tmp_path / loop) for loop, proc in runs.items()}
    finally:
        for proc in runs.values():  # the other run, if one failed
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - started
    oracle, ours = results["asyncio"], results["tidal"]
    report = json.loads((tmp_path / "tidal.json").read_text())
    print(f"\nanyio {ANYIO_VERSION} suite, {elapsed:.0f} s (both runs, concurrently):")
    print(f"  asyncio: {tally(oracle)}\n  tidal:   {tally(ours)}")
    # The harness must really have run anyio's tests, and on tidal's loop.
    assert sum(state == "passed" for state, _ in oracle.values()) > 500, tally(oracle)
    assert report["tidal_loops"] > 500, report

    diverging = sorted(test_id for test_id, (state, _) in oracle.items()
                       if state == "passed" and ours.get(test_id, ("missing",))[0] != "passed")
    if diverging:
        # Once more, alone: what passes now was the machine's timing, not tidal.
        rerun = finish(start_suite(root, "tidal", tmp_path / "rerun", deps,
                                   [node_id(t) for t in diverging]), tmp_path / "rerun")
        flaky = [t for t in diverging if rerun.get(t, ("missing",))[0] == "passed"]
        for test_id in flaky:
            print(f"  passed on tidal when re-run alone: {test_id}")
        diverging = [t for t in diverging if t not in flaky]
    for test_id in [t for t in diverging if t in KNOWN]:
        print(f"  known difference: {test_id}: {KNOWN[test_id]}")
    failures = [t for t in diverging if t not in KNOWN]
    if failures:
        details = "\n\n".join(
            f"--- {t}\n{ours.get(t, ('missing', 'not run on tidal'))[1][-1500:]}"
            for t in failures)
        pytest.fail(f"{len(failures)} anyio test(s) pass on asyncio but not on tidal:\n"
                    + "\n".join(f"  {t}" for t in failures) + "\n\n" + details)


def test_root_task_of_run_until_complete(loop: Any) -> None:
    """anyio finds the task that run_until_complete() runs as the root task.

    It looks for asyncio's own ``_run_until_complete_cb`` among each task's
    done callbacks (or uvloop's), by identity.  Its worker threads stop when
    the root task ends: under anyio's pytest runner that is the end of each
    test on asyncio, while on a loop it does not recognise it is the runner's
    own task, which ends only at teardown (the cause of the flaky
    ``TestBlockingPortalProvider::test_single_thread`` and
    ``test_run_sync_from_thread_pooling`` on tidal: a stopping worker thread
    is still counted by the next test).
    """
    from anyio._backends._asyncio import find_root_task

    async def child() -> Any:
        return find_root_task()

    async def main() -> bool:
        me = asyncio.current_task()
        return await asyncio.ensure_future(child()) is me

    assert loop.run_until_complete(main())

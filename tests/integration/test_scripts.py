"""``python -m tidal run`` on ordinary library programs, with ``python`` itself as the oracle.

Each script under ``scripts/`` is a plain asyncio program (``asyncio.run(main())``)
that prints a JSON report: the loop's and the main task's classes, and what
it observed.  Under ``python -m tidal run`` the loop and task must be
tidal's; everything else, including an empty stderr and exit status 0, must
match what ``python script.py`` gives.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tidal

SCRIPTS = Path(__file__).resolve().parent / "scripts"
LIBRARIES = {"aiohttp": "aiohttp", "httpx": "httpx", "websockets": "websockets.asyncio.server"}


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert (proc.returncode, err) == (0, ""), f"{proc.args}:\n{err}"
    report: dict[str, Any] = json.loads(out)
    return report


def class_of(qualified: str) -> Any:
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("as_module", [False, True], ids=["script", "module"])
def test_tidal_run(library: str, as_module: bool) -> None:
    pytest.importorskip(LIBRARIES[library])
    name = f"{library}_app"
    target = ["-m", name] if as_module else [str(SCRIPTS / f"{name}.py")]
    # Both at once: the oracle costs no extra wall time.
    on_tidal = start(["-m", "tidal", "run", *target], cwd=SCRIPTS)
    on_asyncio = start(target, cwd=SCRIPTS)
    tidal_report, asyncio_report = finish(on_tidal), finish(on_asyncio)

    assert tidal_report.pop("loop").startswith("tidal.")
    assert class_of(tidal_report.pop("task")) is tidal.Task
    assert asyncio_report.pop("loop").startswith("asyncio.")
    assert not class_of(asyncio_report.pop("task")).__module__.startswith("tidal")
    assert tidal_report == asyncio_report

"""The examples run, and print the same on tidal as on asyncio.

Each example says ``import tidal as asyncio``; the oracle run swaps that line
for ``import asyncio`` and must print the same lines (timings excepted).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DETERMINISTIC = ["waiting.py", "callbacks.py", "taskgroup_timeouts.py", "loop_in_thread.py"]


def run(source: str, tmp_path: Path, name: str, *args: str) -> str:
    script = tmp_path / name
    script.write_text(source)
    env = dict(os.environ, TIDAL_EXAMPLE_SCALE="0.01")
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "destroyed but it is pending" not in proc.stderr, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_example_matches_asyncio(name: str, tmp_path: Path) -> None:
    source = (EXAMPLES / name).read_text()
    assert "import tidal as asyncio" in source
    on_tidal = run(source, tmp_path, name)
    on_asyncio = run(source.replace("import tidal as asyncio", "import asyncio"), tmp_path, name)
    assert on_tidal == on_asyncio
    assert on_tidal.strip()


def test_three_sleepers_finish_together(tmp_path: Path) -> None:
    out = run((EXAMPLES / "three_sleepers.py").read_text(), tmp_path, "three_sleepers.py")
    assert out.splitlines()[:3] == ["one", "two", "three"]
    seconds = float(re.search(r"in ([0-9.]+) s", out).group(1))  # type: ignore[union-attr]
    assert 2.9 <= seconds < 6  # 3 s of sleeping, scaled: not 6 s of sequential sleeping


def test_crawler_fetches_every_page(tmp_path: Path) -> None:
    out = run(
        (EXAMPLES / "crawler.py").read_text(), tmp_path, "crawler.py",
        "--pages", "120", "--limit", "20", "--latency", "0.005",
    )
    assert out.startswith("fetched 120 pages with up to 20 in flight in ")

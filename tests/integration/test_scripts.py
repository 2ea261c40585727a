"""``python -m tidal run`` on ordinary library programs, with ``python`` itself as the oracle.

Also an aiohttp server started with ``web.run_app()`` (aiohttp's own Runner,
signal handlers) and stopped with SIGINT or SIGTERM.

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
import re
import selectors
import signal
import subprocess
import sys
import urllib.request
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


@pytest.mark.parametrize(("library", "as_module"), [
    ("aiohttp", False), ("httpx", False), ("websockets", False),
    ("websockets", True),  # ``tidal run -m module``: the cheapest program will do
], ids=["aiohttp", "httpx", "websockets", "websockets-as-module"])
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


def first_line(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """(first line, what followed it) of *proc*'s stdout, read from the pipe itself.

    Raw reads, as ``communicate()`` does later with two pipes: anything the
    text layer had buffered would be lost to it.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            assert sel.select(timeout), f"{proc.args}: no line in {timeout} s: {data!r}"
            chunk = os.read(fd, 4096)
            assert chunk, f"{proc.args}: output ended: {data!r}"
            data += chunk
    line, _, rest = data.decode().partition("\n")
    return line, rest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_aiohttp_run_app_until_signalled(signum: int) -> None:
    pytest.importorskip("aiohttp")
    script = str(SCRIPTS / "aiohttp_run_app.py")
    procs = {"tidal": start(["-m", "tidal", "run", script], cwd=SCRIPTS),
             "asyncio": start([script], cwd=SCRIPTS)}
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        rests = {}
        for name, proc in procs.items():
            banner, rests[name] = first_line(proc)
            match = re.search(r"http://127\.0\.0\.1:\d+", banner)
            assert match, f"{name}: {banner!r}"
            with no_proxy.open(match.group(), timeout=10) as reply:
                assert reply.read() == f"hello from {name}".encode()
            proc.send_signal(signum)
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=30)
            assert (proc.returncode, err) == (0, ""), f"{name}:\n{err}"
            out = rests[name] + out
            assert out == "(Press CTRL+C to quit)\ncleanup ran\nrun_app returned\n", name
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()

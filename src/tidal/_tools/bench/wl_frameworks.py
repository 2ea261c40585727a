"""Real frameworks: an aiohttp "hello" server and a uvicorn + Starlette one (httptools).

The server runs in the worker, on the runtime under test, pinned to one CPU;
the load comes from ``wrk`` (``-t1 -c50``) pinned to another, or from
:mod:`.loadgen` with 50 connections where wrk is not installed (the row's
title says which).  A warm-up run of the generator comes first and is not
counted.  Each workload needs its framework installed (``tidal[bench]``) and
is skipped with a note otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from tidal._tools.bench import loadgen
from tidal._tools.bench.registry import REQ_PER_S, Workload, register, run_main

CONNECTIONS = 50
HELLO = "Hello, World!"
#: generator warm-up before the measured run (seconds; --quick: shorter)
WARMUP, QUICK_WARMUP = 1.0, 0.3
_QUICK_N = 1000
_RATE = re.compile(rb"Requests/sec:\s*([0-9.]+)")
_NON_2XX = re.compile(rb"Non-2xx or 3xx responses:\s*(\d+)")
_CONNECT_ERRORS = re.compile(rb"Socket errors: connect (\d+)")


def generator() -> str:
    """``"wrk"`` when wrk is on PATH, else ``"loadgen"`` (tidal's own client)."""
    return "wrk" if shutil.which("wrk") else "loadgen"


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(server CPUs, generator CPUs): one usable CPU each, or None with fewer than two."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[1]}


def generator_command(tool: str, port: int, seconds: float) -> list[str]:
    """The command line that loads 127.0.0.1:*port* for *seconds* with *tool*."""
    if tool == "wrk":
        return ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
                f"http://127.0.0.1:{port}/"]
    return [sys.executable, "-I", loadgen.__file__, "--mode", "http", "--port", str(port),
            "--conns", str(CONNECTIONS), "--duration", str(seconds), "--warmup", "0"]


def pinned(cmd: list[str], cpus: set[int] | None) -> list[str]:
    """*cmd* run on *cpus* only (through a tiny exec wrapper: no preexec_fn)."""
    if cpus is None:
        return cmd
    wrapper = "import os, sys; os.sched_setaffinity(0, %r); os.execvp(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-I", "-c", wrapper % (cpus,), *cmd]


def parse_rate(tool: str, out: bytes) -> float:
    """Requests per second from the generator's output (RuntimeError if it shows failures)."""
    if tool == "loadgen":
        import json

        lines = out.decode(errors="replace").strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
        if "rate" not in result:
            raise RuntimeError(f"load generator failed: {result.get('error', out[-300:])!r}")
        return float(result["rate"])
    found = _RATE.search(out)
    if found is None:
        raise RuntimeError(f"wrk printed no rate: {out[-300:]!r}")
    for pattern, what in ((_NON_2XX, "non-2xx responses"), (_CONNECT_ERRORS, "connect errors")):
        bad = pattern.search(out)
        if bad and int(bad.group(1)):
            raise RuntimeError(f"wrk saw {int(bad.group(1))} {what}")
    return float(found.group(1))


async def _run_generator(aio: Any, tool: str, port: int, seconds: float,
                         cpus: set[int] | None) -> float:
    proc = subprocess.Popen(
        pinned(generator_command(tool, port, seconds), cpus),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    await loadgen.until_exited(aio, proc)
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} exited with status {proc.returncode}: {out[-300:]!r}")
    return parse_rate(tool, out)


async def load(aio: Any, port: int, n: int) -> dict[str, float]:
    """Warm the server up, then load it for *n* ms; ``{"rate": requests per second}``."""
    tool = generator()
    split = cpu_split()
    gen_cpus = split[1] if split else None
    await _run_generator(aio, tool, port, QUICK_WARMUP if n <= _QUICK_N else WARMUP, gen_cpus)
    return {REQ_PER_S.key: await _run_generator(aio, tool, port, n / 1000, gen_cpus)}


def _pin_server() -> None:
    split = cpu_split()
    if split is not None:
        os.sched_setaffinity(0, split[0])  # this worker is the server


def _serve(start: Callable[[Any, int], Awaitable[dict[str, float]]]
           ) -> Callable[[Any, Any, int], dict[str, float]]:
    def workload(aio: Any, factory: Any, n: int) -> dict[str, float]:
        _pin_server()

        async def main() -> dict[str, float]:
            return await start(aio, n)

        result: dict[str, float] = run_main(aio, factory, main)
        return result

    return workload


async def _aiohttp_server(aio: Any, n: int) -> dict[str, float]:
    from aiohttp import web

    async def hello(request: Any) -> Any:
        return web.Response(text=HELLO)

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        return await load(aio, runner.addresses[0][1], n)
    finally:
        await runner.cleanup()


async def _uvicorn_server(aio: Any, n: int) -> dict[str, float]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> Any:
        return PlainTextResponse(HELLO)

    app = Starlette(routes=[Route("/", hello)])
    # The loop is the runtime's (run_main made it): uvicorn only serves on it.
    config = uvicorn.Config(app, http="httptools", lifespan="off", access_log=False,
                            log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    # proto=IPPROTO_TCP as getaddrinfo gives it: asyncio sets TCP_NODELAY on
    # accepted sockets only then, and on proto 0 each two-write response
    # waits ~40 ms for a delayed ACK (asyncio at ~1k req/s, the others not).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    serving = aio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()  # it failed to start: say why
                raise RuntimeError("uvicorn stopped before it started serving")
            await aio.sleep(0.01)
        return await load(aio, port, n)
    finally:
        server.should_exit = True
        await serving
        sock.close()


def _doc(what: str) -> str:
    via = ("wrk -t1 -c50" if generator() == "wrk"
           else f"tidal's loadgen.py with {CONNECTIONS} connections (wrk is not installed)")
    return (f"One op: one HTTP/1.1 keep-alive GET answered by {what}.\n\n"
            f"Load from {via}, pinned to another CPU than the server; a warm-up run "
            "first; requests per second.")


def _register(name: str, title: str, what: str, requires: tuple[str, ...],
              start: Callable[[Any, int], Awaitable[dict[str, float]]]) -> None:
    fn = _serve(start)
    fn.__doc__ = _doc(what)
    fn.__name__ = name
    label = "wrk" if generator() == "wrk" else "loadgen"
    register(Workload(
        name, f"{title} ({label})", fn, 3000, _QUICK_N, metrics=(REQ_PER_S,),
        in_process_repeats=False, quick=False, timeout=60, max_repeat=3, requires=requires,
        params={"generator": label, "connections": CONNECTIONS},
    ))


_register("aiohttp_hello", "aiohttp hello server", 'an aiohttp web app ("Hello, World!")',
          ("aiohttp",), _aiohttp_server)
_register("uvicorn_hello", "uvicorn+Starlette hello",
          'a Starlette app ("Hello, World!") on uvicorn with httptools',
          ("uvicorn", "starlette", "httptools"), _uvicorn_server)

"""``python -m tidal run``: a program runs as under ``python``, on tidal's loop."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

#: This interpreter, and the others the source tree runs on. A tree without
#: src/ (CI's compiled-build run) tests the installed build: this interpreter's only.
INTERPRETERS = [
    pytest.param(sys.executable, id=f"py{sys.version_info[0]}.{sys.version_info[1]}"),
    *(
        pytest.param(path, id=name)
        for name, path in (
            ("py3.12", os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3.12")),
            ("py3.13", os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python3.13")),
        )
        if os.path.exists(path) and path != sys.executable and os.path.isdir(SRC)
    ),
]

ASYNCIO_PROGRAM = """\
import asyncio, json, sys

async def main():
    return {
        "loop": type(asyncio.get_running_loop()).__module__,
        "task": type(asyncio.current_task()).__module__,
    }

seen = asyncio.run(main())
with asyncio.Runner() as runner:
    seen["runner"] = type(runner.get_loop()).__module__
print(json.dumps(seen))
"""

INTROSPECT = """\
import json, sys
print(json.dumps({
    "argv": sys.argv, "name": __name__, "path0": sys.path[0], "file": __file__,
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
    "package": __package__, "spec": __spec__ is None,
}))
"""


def tidal(
    *args: str, cwd: Path, python: str = sys.executable,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("PYTHONASYNCIODEBUG", None)
    return subprocess.run(
        [python, "-m", "tidal", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=60,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("python", INTERPRETERS)
def test_asyncio_run_uses_tidal(tmp_path: Path, python: str) -> None:
    write(tmp_path / "prog.py", ASYNCIO_PROGRAM)
    done = tidal("run", "prog.py", cwd=tmp_path, python=python)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["loop"].startswith("tidal."), seen
    assert seen["task"].startswith("tidal."), seen
    assert seen["runner"].startswith("tidal."), seen


def test_plain_python_uses_asyncio(tmp_path: Path) -> None:
    # The oracle: the same program under python itself is on asyncio's loop.
    write(tmp_path / "prog.py", ASYNCIO_PROGRAM)
    done = subprocess.run(
        [sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert json.loads(done.stdout)["loop"].startswith("asyncio.")


def test_script_sees_what_python_gives_it(tmp_path: Path) -> None:
    script = write(tmp_path / "sub" / "show.py", INTROSPECT)
    done = tidal("run", "sub/show.py", "a", "-x", "--flag", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    under_tidal = json.loads(done.stdout)
    plain = json.loads(subprocess.run(
        [sys.executable, "sub/show.py", "a", "-x", "--flag"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    ).stdout)
    assert under_tidal == plain
    assert under_tidal["argv"] == ["sub/show.py", "a", "-x", "--flag"]
    assert under_tidal["name"] == "__main__"
    assert under_tidal["path0"] == str(script.parent.resolve())
    assert under_tidal["main_is_me"]


@pytest.mark.parametrize("code", [0, 3])
def test_exit_status_propagates(tmp_path: Path, code: int) -> None:
    write(tmp_path / "ex.py", f"import sys\nsys.exit({code})\n")
    assert tidal("run", "ex.py", cwd=tmp_path).returncode == code


def test_sys_exit_message_goes_to_stderr(tmp_path: Path) -> None:
    write(tmp_path / "ex.py", "import sys\nsys.exit('bad things')\n")
    done = tidal("run", "ex.py", cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (1, "bad things")


def test_uncaught_exception_reported_like_python(tmp_path: Path) -> None:
    write(tmp_path / "boom.py", """\
        def fail():
            raise ValueError("boom")
        fail()
    """)
    done = tidal("run", "boom.py", cwd=tmp_path)
    plain = subprocess.run(
        [sys.executable, "boom.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == plain.returncode == 1
    assert done.stderr == plain.stderr
    assert "_tools" not in done.stderr


def test_exception_inside_asyncio_run(tmp_path: Path) -> None:
    write(tmp_path / "boom.py", """\
        import asyncio
        async def main():
            raise KeyError("inside")
        asyncio.run(main())
    """)
    done = tidal("run", "boom.py", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):\n")
    assert done.stderr.rstrip().endswith("KeyError: 'inside'")


def test_missing_script(tmp_path: Path) -> None:
    done = tidal("run", "nope.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "can't open file" in done.stderr


def test_run_module(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    mod = write(tmp_path / "pkg" / "mod.py", INTROSPECT)
    done = tidal("run", "-m", "pkg.mod", "x", "y", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["argv"] == [str(mod), "x", "y"]
    assert seen["name"] == "__main__"
    assert seen["path0"] == str(tmp_path)
    assert seen["package"] == "pkg"


def test_run_module_on_tidal(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", ASYNCIO_PROGRAM)
    done = tidal("run", "-m", "prog", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["loop"].startswith("tidal.")


def test_run_missing_module(tmp_path: Path) -> None:
    done = tidal("run", "-m", "no_such_module_here", cwd=tmp_path)
    assert done.returncode == 1
    assert "No module named no_such_module_here" in done.stderr


def test_version_and_help(tmp_path: Path) -> None:
    import tidal as tidal_pkg

    done = tidal("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith(f"tidal {tidal_pkg.__version__}")
    done = tidal("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "run" in done.stdout and "bench" in done.stdout
    done = tidal("run", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "-m MODULE" in done.stdout


def test_keyboard_interrupt_ends_like_python(tmp_path: Path) -> None:
    # python re-raises SIGINT on itself so the parent sees "killed by ^C".
    write(tmp_path / "ki.py", "raise KeyboardInterrupt\n")
    done = tidal("run", "ki.py", cwd=tmp_path)
    plain = subprocess.run(
        [sys.executable, "ki.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == plain.returncode != 0
    assert done.stderr == plain.stderr


def python_itself(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The oracle: the same command line under plain python."""
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )


def test_run_directory_like_python(tmp_path: Path) -> None:
    write(tmp_path / "app" / "__main__.py", INTROSPECT)
    for target in ("app", "./app", str(tmp_path / "app")):
        done = tidal("run", target, "a", "-x", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        plain = python_itself(target, "a", "-x", cwd=tmp_path)
        assert json.loads(done.stdout) == json.loads(plain.stdout)
        assert json.loads(done.stdout)["argv"] == [target, "a", "-x"]


def test_run_directory_program_is_on_tidal(tmp_path: Path) -> None:
    write(tmp_path / "app" / "__main__.py", ASYNCIO_PROGRAM)
    done = tidal("run", "app", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["loop"].startswith("tidal."), done.stdout


def test_run_zip_application_like_python(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "app.pyz", "w") as zf:
        zf.writestr("__main__.py", INTROSPECT)
    done = tidal("run", "app.pyz", "z", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plain = python_itself("app.pyz", "z", cwd=tmp_path)
    assert json.loads(done.stdout) == json.loads(plain.stdout)
    assert json.loads(done.stdout)["path0"] == str(tmp_path / "app.pyz")


def test_directory_without_main_like_python(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = tidal("run", "empty", cwd=tmp_path)
    plain = python_itself("empty", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (plain.returncode, plain.stderr) == (
        1, f"{sys.executable}: can't find '__main__' module in {str(tmp_path / 'empty')!r}\n"
    )


def test_exception_in_directory_program_reported_like_python(tmp_path: Path) -> None:
    write(tmp_path / "app" / "__main__.py", "raise ValueError('in app')\n")
    done = tidal("run", "app", cwd=tmp_path)
    plain = python_itself("app", cwd=tmp_path)
    assert done.returncode == plain.returncode == 1
    assert done.stderr == plain.stderr
    assert "_tools" not in done.stderr


def test_run_help_lists_every_option(tmp_path: Path) -> None:
    done = tidal("run", "--help", cwd=tmp_path)
    assert done.returncode == 0
    for option in ("-h, --help", "--debug", "-m MODULE", "script.py | DIR | app.zip"):
        assert option in done.stdout, option


def test_options_after_the_program_are_the_programs(tmp_path: Path) -> None:
    write(tmp_path / "show.py", INTROSPECT)
    done = tidal("run", "--debug", "show.py", "--help", "--debug", "-m", "x", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["argv"] == ["show.py", "--help", "--debug", "-m", "x"]
    done = tidal("run", "--", "show.py", "-h", cwd=tmp_path)
    assert json.loads(done.stdout)["argv"] == ["show.py", "-h"]


@pytest.mark.parametrize("argv", [["--bogus", "x.py"], [], ["--debug"], ["-m"]])
def test_run_usage_errors(tmp_path: Path, argv: list[str]) -> None:
    done = tidal("run", *argv, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: tidal run")
    assert "tidal run: error:" in done.stderr


DEBUG_PROGRAM = """\
import asyncio, json

async def main():
    return asyncio.get_running_loop().get_debug()

loop = asyncio.new_event_loop()
print(json.dumps({
    "run": asyncio.run(main()),
    "new_event_loop": loop.get_debug(),
    "module": type(loop).__module__,
}))
loop.close()
"""


@pytest.mark.parametrize("module", [False, True], ids=["script", "module"])
def test_debug_turns_on_asyncio_debug_mode(tmp_path: Path, module: bool) -> None:
    write(tmp_path / "dbg.py", DEBUG_PROGRAM)
    target = ["-m", "dbg"] if module else ["dbg.py"]
    done = tidal("run", "--debug", *target, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"run": True, "new_event_loop": True, "module": "tidal._loop"}
    done = tidal("run", *target, cwd=tmp_path)
    assert json.loads(done.stdout) == {
        "run": False, "new_event_loop": False, "module": "tidal._loop",
    }


def test_keyboard_interrupt_runs_atexit_handlers_like_python(tmp_path: Path) -> None:
    # python joins threads and runs atexit handlers, then dies by SIGINT.
    write(tmp_path / "ki.py", """\
        import atexit, sys, threading
        atexit.register(lambda: print("atexit ran", flush=True))
        threading.Thread(target=lambda: print("thread ran", flush=True)).start()
        def stop():
            raise KeyboardInterrupt
        stop()
    """)
    done = tidal("run", "ki.py", cwd=tmp_path)
    plain = python_itself("ki.py", cwd=tmp_path)
    assert done.returncode == plain.returncode == -signal.SIGINT
    assert done.stdout == plain.stdout
    assert "atexit ran" in done.stdout
    assert done.stderr == plain.stderr


def test_keyboard_interrupt_in_asyncio_run_like_python(tmp_path: Path) -> None:
    write(tmp_path / "ki.py", """\
        import asyncio, atexit
        atexit.register(lambda: print("atexit ran", flush=True))
        async def main():
            raise KeyboardInterrupt
        asyncio.run(main())
    """)
    done = tidal("run", "ki.py", cwd=tmp_path)
    plain = python_itself("ki.py", cwd=tmp_path)
    assert done.returncode == plain.returncode == -signal.SIGINT
    assert done.stdout == plain.stdout == "atexit ran\n"


FACTORIES_PROGRAM = """\
import asyncio, json, sys, warnings

async def main():
    return type(asyncio.get_running_loop()).__module__

seen = {}
if sys.version_info >= (3, 12):
    seen["run"] = asyncio.run(main(), loop_factory=asyncio.SelectorEventLoop)
if sys.version_info >= (3, 13):
    seen["EventLoop"] = asyncio.run(main(), loop_factory=asyncio.EventLoop)
loop = asyncio.SelectorEventLoop()
seen["SelectorEventLoop"] = loop.run_until_complete(main())
loop.close()
with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
    seen["Runner"] = runner.run(main())
asyncio.set_event_loop_policy(None)
seen["policy reset"] = asyncio.run(main())
asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
seen["DefaultEventLoopPolicy"] = asyncio.run(main())
try:
    import uvloop
except ImportError:
    pass
else:
    loop = uvloop.new_event_loop()
    seen["uvloop.new_event_loop"] = loop.run_until_complete(main())
    loop.close()
    seen["uvloop.run"] = uvloop.run(main())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        uvloop.install()
    seen["uvloop.install"] = asyncio.run(main())
print(json.dumps(seen))
"""


def test_public_loop_factories_make_tidal_loops(tmp_path: Path) -> None:
    write(tmp_path / "factories.py", FACTORIES_PROGRAM)
    done = tidal("run", "factories.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert set(seen.values()) == {"tidal._loop"}, seen
    assert "not tidal's" not in done.stderr
    plain = python_itself("factories.py", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "tidal._loop" not in json.loads(plain.stdout).values()


def test_foreign_loop_reported_once(tmp_path: Path) -> None:
    write(tmp_path / "foreign.py", """\
        import asyncio.selector_events
        async def main():
            return 1
        for _ in range(2):
            loop = asyncio.selector_events.BaseSelectorEventLoop()
            loop.run_until_complete(main())
            loop.close()
        print("done")
    """)
    done = tidal("run", "foreign.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert done.stderr.count("not tidal's") == 1
    assert "asyncio.selector_events.BaseSelectorEventLoop" in done.stderr


SPAWN_PROGRAM = """\
import asyncio, json, multiprocessing

async def main():
    return type(asyncio.get_running_loop()).__module__

def child(results):
    results.put(asyncio.run(main()))

if __name__ == "__main__":
    seen = {}
    for method in ("spawn", "fork"):
        ctx = multiprocessing.get_context(method)
        results = ctx.Queue()
        proc = ctx.Process(target=child, args=(results,))
        proc.start()
        seen[method] = results.get(timeout=30)
        proc.join(30)
    print(json.dumps(seen))
"""


def test_worker_processes_run_on_tidal_too(tmp_path: Path) -> None:
    # hypercorn's workers and uvicorn --workers/--reload are spawned: fresh
    # interpreters, which tidal run sets up as it sets up the program.
    write(tmp_path / "workers.py", SPAWN_PROGRAM)
    done = tidal("run", "workers.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"spawn": "tidal._loop", "fork": "tidal._loop"}
    plain = python_itself("workers.py", cwd=tmp_path)
    assert set(json.loads(plain.stdout).values()) == {"asyncio.unix_events"}


HELLO_APP = """\
import asyncio, json

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps({
        "loop": type(asyncio.get_running_loop()).__module__,
        "task": type(asyncio.current_task()).__module__,
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def _connect(port: int) -> socket.socket:
    # A uvicorn worker says "startup complete" just before it listens.
    deadline = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _http_get(port: int) -> tuple[str, dict[str, str]]:
    with _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), json.loads(body)


def _serve_one_request(command: list[str], cwd: Path) -> tuple[str, dict[str, str], str]:
    """Start uvicorn, wait until it is ready, GET / once, stop it with ^C."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        # Ready once it said where it listens and (a worker) that it started.
        port = None
        started = False
        while port is None or not started:
            line = lines.get(timeout=30)
            if line is None:
                raise AssertionError("server exited:\n" + "".join(log))
            log.append(line)
            if "running on http://127.0.0.1:" in line:
                port = int(line.split("http://127.0.0.1:")[1].split()[0])
            started = started or "startup complete" in line
        status, seen = _http_get(port)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (line := lines.get(timeout=10)) is not None:
        log.append(line)
    return status, seen, "".join(log)


UVICORN_LOOPS = ["auto", "asyncio", "uvloop", "auto --workers 2"]


@pytest.mark.parametrize("loop", UVICORN_LOOPS)
def test_uvicorn_serves_on_tidal(tmp_path: Path, loop: str) -> None:
    # uvicorn passes its own loop factory (uvloop.new_event_loop or
    # asyncio.SelectorEventLoop); tidal run must still put the app on tidal.
    pytest.importorskip("uvicorn")
    if "uvloop" in loop:
        pytest.importorskip("uvloop")
    write(tmp_path / "hello.py", HELLO_APP)
    loop, *more = loop.split()
    port = 0
    if more:
        # With workers uvicorn logs the port it was given: pick a free one.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    status, seen, log = _serve_one_request(
        [sys.executable, "-m", "tidal", "run", "-m", "uvicorn", "hello:app",
         "--host", "127.0.0.1", "--port", str(port), "--loop", loop, *more], tmp_path,
    )
    assert status == "HTTP/1.1 200 OK", log
    assert seen == {"loop": "tidal._loop", "task": "tidal._core.tasks"}, log
    assert "not tidal's" not in log


def test_uvicorn_loop_option_names_tidal(tmp_path: Path) -> None:
    # Without tidal run: uvicorn --loop tidal:new_event_loop.
    pytest.importorskip("uvicorn")
    write(tmp_path / "hello.py", HELLO_APP)
    status, seen, log = _serve_one_request(
        [sys.executable, "-m", "uvicorn", "hello:app", "--host", "127.0.0.1", "--port", "0",
         "--loop", "tidal:new_event_loop"], tmp_path,
    )
    assert status == "HTTP/1.1 200 OK", log
    assert seen == {"loop": "tidal._loop", "task": "tidal._core.tasks"}, log

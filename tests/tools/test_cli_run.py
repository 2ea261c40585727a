"""``python -m tidal run``: a program runs as under ``python``, on tidal's loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

INTERPRETERS = [
    pytest.param(sys.executable, id=f"py{sys.version_info[0]}.{sys.version_info[1]}"),
    *(
        pytest.param(path, id=name)
        for name, path in (
            ("py3.12", os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3.12")),
            ("py3.13", os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python3.13")),
        )
        if os.path.exists(path) and path != sys.executable
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
    assert done.returncode == 0 and "-m module" in done.stdout


def test_keyboard_interrupt_ends_like_python(tmp_path: Path) -> None:
    # python re-raises SIGINT on itself so the parent sees "killed by ^C".
    write(tmp_path / "ki.py", "raise KeyboardInterrupt\n")
    done = tidal("run", "ki.py", cwd=tmp_path)
    plain = subprocess.run(
        [sys.executable, "ki.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == plain.returncode != 0
    assert done.stderr == plain.stderr

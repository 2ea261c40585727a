"""tidal's build: the pure-Python package, or the same source compiled with mypyc.

``pip install .``, ``pip wheel .`` and ``python -m build`` compile the modules in
``COMPILED`` with mypyc (a build requirement in pyproject.toml) when a C compiler
is there; the rest of the package stays Python. ``TIDAL_PURE=1``, no compiler, or
``pip install -e .`` (development) give the pure-Python package. Either way the
installed ``tidal.compiled`` says which build it is. Metadata is in pyproject.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
from typing import Any

from setuptools import setup

#: The modules mypyc compiles: the core's hot paths. Each stays one source file;
#: where a construct cannot be compiled, its source says why (docs/design.md,
#: "Compiled build").
COMPILED = [
    "src/tidal/_core/loopbase.py",
    "src/tidal/_core/fdtable.py",
    "src/tidal/_core/handles.py",
    "src/tidal/_core/futures.py",
    "src/tidal/_core/tasks.py",
    "src/tidal/_core/plumbing.py",
    "src/tidal/_io/transport.py",
    "src/tidal/_io/tcp.py",
    "src/tidal/_core/poller.py",
    "src/tidal/_core/loop.py",
]

#: setup.py commands that build what gets installed (a wheel, or a direct install).
_BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install"}
#: Commands that must stay pure: an editable install runs the source tree itself.
_EDITABLE_COMMANDS = {"editable_wheel", "develop"}


def _say(message: str) -> None:
    print(f"tidal build: {message}", file=sys.stderr)


def _has_compiler() -> bool:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) is not None


def _compile() -> bool:
    commands = set(sys.argv[1:])
    if commands & _EDITABLE_COMMANDS or not commands & _BUILD_COMMANDS:
        return False
    if os.environ.get("TIDAL_PURE", "") not in ("", "0"):
        _say("TIDAL_PURE is set: building the pure-Python package")
        return False
    if sys.version_info < (3, 12):
        # There typing.Generic is a Python class: mypyc gives Task (a Generic) a
        # weak-reference slot that its deallocator never clears (mypyc#1102).
        _say("Python 3.11: building the pure-Python package")
        return False
    if not _has_compiler():
        _say("no C compiler found: building the pure-Python package")
        return False
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        _say("mypyc is not installed: building the pure-Python package")
        return False
    return True


def _ext_modules() -> list[Any]:
    from mypyc.build import mypycify

    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    _say(f"compiling {len(COMPILED)} modules with mypyc for Python {version}")
    # pyproject.toml's [tool.mypy] pins python_version for type checking; the
    # compiled code must see this interpreter's version (sys.version_info checks).
    extensions = mypycify(
        ["--python-version", version, *COMPILED], opt_level="3", debug_level="1"
    )
    sources = [path for ext in extensions for path in ext.sources if path.endswith(".c")]
    # C that mypyc left as it was (an unchanged build tree) is patched already.
    fresh = any(
        _DEALLOC_START.search(text) and _WEAKREF_CALL not in text
        for text in map(_read, sources)
    )
    patched = sum(_clear_weak_references(path) for path in sources)
    if not patched:
        # mypyc's generated deallocator changed shape: without the call the
        # classes' weak references dangle, so no compiled build at all.
        raise RuntimeError("tidal build: found no mypyc deallocator to patch")
    if fresh:
        _drop_traceback_entries(sources)
    return extensions


#: What _clear_weak_references() adds to each deallocator.
_WEAKREF_CALL = (
    "if (Py_TYPE(self)->tp_weaklistoffset != 0) PyObject_ClearWeakRefs((PyObject *)self);"
)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


#: Where mypyc's deallocator frees a native instance (mypy 2.4's generated C).
_DEALLOC_START = re.compile(r"^(\s*)CPy_TRASHCAN_BEGIN\(self, (\w+)\)\n", re.MULTILINE)


def _clear_weak_references(path: str) -> int:
    """Add the missing ``PyObject_ClearWeakRefs()`` to each deallocator in *path*.

    tidal's Handle and Future derive from an interpreted class
    (``_core/native.NativeBase``), which gives their instances weak references,
    but mypyc's deallocator never clears them (mypyc/mypyc#1102): a
    reference's callback would not run (an ``asyncio.all_tasks()`` WeakSet
    would keep the dead task) and the reference would dangle. The call is what
    CPython's own deallocator makes for a class with ``__weakref__``: after the
    finalizer (a task's ``__del__``), before the attributes are cleared.
    Returns how many deallocators were patched.
    """
    if not path.endswith(".c"):
        return 0
    source = _read(path)
    call = _WEAKREF_CALL
    if call in source:
        return source.count(call)
    source, count = _DEALLOC_START.subn(lambda m: f"{m.group(0)}{m.group(1)}{call}\n", source)
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    return count


#: The end of a source line whose exception is plumbing no traceback shows.
NO_TRACEBACK_MARK = "# no traceback entry"


def _drop_traceback_entries(sources: list[str]) -> None:
    """Remove mypyc's traceback entry at each source line marked ``NO_TRACEBACK_MARK``.

    For an exception raised at a line, compiled code adds a traceback entry
    as the interpreter would for a frame, but it has no frame: it makes a
    code object and a frame for the entry, about 3,000 instructions. The
    marked lines raise on every operation (``StopIteration`` as a coroutine
    finishes or a future's await resumes) and their entries are tidal's
    plumbing, which ``strip_internal_frames()`` removes anyway (asyncio's C
    Task and FutureIter add none). A mark that matches nothing fails the build.
    """
    marks: list[tuple[str, int]] = []
    for module in COMPILED:
        with open(module, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.rstrip().endswith(NO_TRACEBACK_MARK):
                    marks.append((module.removeprefix("src/"), number))
    found = dict.fromkeys(marks, 0)
    pattern = re.compile(r'^\s*CPy_AddTraceback\("(?:src/)?([^"]+)", "\w+", (\d+), \w+\);\n', re.M)
    for path in sources:
        source = _read(path)

        def drop(match: re.Match[str]) -> str:
            key = (match.group(1), int(match.group(2)))
            if key not in found:
                return match.group(0)
            found[key] += 1
            return ""

        patched = pattern.sub(drop, source)
        if patched != source:
            with open(path, "w", encoding="utf-8") as f:
                f.write(patched)
    missing = [f"{module}:{line}" for (module, line), count in found.items() if not count]
    if missing:
        raise RuntimeError(f"tidal build: no traceback entry found to drop at {', '.join(missing)}")


setup(ext_modules=_ext_modules() if _compile() else [])

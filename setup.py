"""tidal's build: the pure-Python package, or the same source compiled with mypyc.

``pip install .``, ``pip wheel .`` and ``python -m build`` compile the modules in
``COMPILED`` with mypyc (a build requirement in pyproject.toml) when a C compiler
is there; the rest of the package stays Python. ``TIDAL_PURE=1``, no compiler, or
``pip install -e .`` (development) give the pure-Python package. Either way the
installed ``tidal.compiled`` says which build it is. Metadata is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from typing import Any

from setuptools import setup

#: The modules mypyc compiles: the core's hot paths. Each stays one source file;
#: where a construct cannot be compiled, its source says why (docs/design.md,
#: "Compiled build").
COMPILED = [
    "src/tidal/_core/handles.py",
    "src/tidal/_core/futures.py",
    "src/tidal/_core/tasks.py",
    "src/tidal/_io/transport.py",
    "src/tidal/_io/tcp.py",
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
    return mypycify(["--python-version", version, *COMPILED], opt_level="3", debug_level="1")


setup(ext_modules=_ext_modules() if _compile() else [])

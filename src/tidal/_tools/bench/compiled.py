"""The compiled (mypyc) build as a runtime of its own: built once, cached, put first on sys.path.

The bench normally runs tidal from the tree it is in, which is the pure
build when that tree is a checkout (``pip install -e .``).  The compiled
columns need the same source compiled: :func:`ensure_build` copies what the
build reads (``src/``, ``setup.py``, ``pyproject.toml``...) into a scratch
directory, runs ``pip wheel`` there (setup.py compiles with mypyc on 3.12+),
and unpacks the wheel into ``~/.cache/tidal-bench/<python>-<source hash>/``.
The worker of a compiled runtime puts that directory first on ``sys.path``.
The hash covers every file the build reads, so an unchanged tree reuses the
build and a changed one gets a new one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TextIO

__all__ = (
    "BuildResult",
    "cache_root",
    "build_dir",
    "ensure_build",
    "prune",
    "source_hash",
    "source_root",
    "unavailable_reason",
)

#: what the build reads besides src/ (pyproject names README.md and LICENSE)
_TOP_FILES = ("setup.py", "pyproject.toml", "README.md", "LICENSE")
#: the file written last into a finished build directory
_MARKER = "BUILD-OK"
#: where the unpacked wheel goes inside a build directory
SITE = "site"
#: builds of one interpreter kept in the cache (the newest ones)
KEPT_BUILDS = 3


def source_root() -> Path | None:
    """The checkout this tidal comes from (None for an installed tidal)."""
    package = Path(__file__).resolve().parents[2]  # .../src/tidal
    root = package.parent.parent
    if package.parent.name != "src" or not all((root / f).is_file() for f in _TOP_FILES[:2]):
        return None
    return root


def _build_inputs(root: Path) -> list[Path]:
    files = [root / name for name in _TOP_FILES if (root / name).is_file()]
    for path in sorted((root / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
            files.append(path)
    return files


def source_hash(root: Path) -> str:
    """A short hash of every file the build reads, their paths included."""
    digest = hashlib.sha256()
    for path in _build_inputs(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Where builds are cached: ``$TIDAL_BENCH_CACHE``, else ``~/.cache/tidal-bench``.

    (``$XDG_CACHE_HOME/tidal-bench`` when that is set.)
    """
    explicit = os.environ.get("TIDAL_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tidal-bench"


def build_dir(root: Path) -> Path:
    """The cache directory of this interpreter's build of the tree at *root*."""
    tag = sysconfig.get_config_var("SOABI") or f"py{sys.version_info[0]}{sys.version_info[1]}"
    return cache_root() / f"{tag}-{source_hash(root)}"


def _compiler() -> str | None:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0])


def unavailable_reason() -> str | None:
    """Why no compiled build can be made for this interpreter, or None if one can.

    Cheap checks only; the build itself can still fail (then
    :func:`ensure_build` says why).
    """
    if sys.version_info < (3, 12):
        return (f"Python {sys.version_info[0]}.{sys.version_info[1]}: "
                "tidal's compiled build needs 3.12+ (setup.py says why)")
    if source_root() is None:
        return "tidal is not run from a checkout: no source to compile"
    if _compiler() is None:
        return "no C compiler found"
    if importlib.util.find_spec("pip") is None:
        return "pip is not installed for this interpreter"
    return None


class BuildResult:
    """Where the compiled build is, or why there is none."""

    def __init__(self, site: Path | None, note: str) -> None:
        self.site = site
        self.note = note

    def __repr__(self) -> str:
        return f"BuildResult(site={self.site!r}, note={self.note!r})"


def _is_compiled_site(site: Path) -> bool:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return any(p.name.endswith(suffix) for p in (site / "tidal" / "_core").glob("*"))


def _wheel_commands(tree: Path, out: Path) -> list[list[str]]:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)]
    # With mypy and setuptools already here, first try without an isolated
    # environment: no index needed, and faster; an isolated build (pip
    # fetches the build requirements) if that fails.
    if importlib.util.find_spec("mypyc") and importlib.util.find_spec("setuptools"):
        return [[*cmd, "--no-build-isolation"], cmd]
    return [cmd]


def _why_pure(log: str) -> str:
    said = [line.split("tidal build:", 1)[1].strip() for line in log.splitlines()
            if "tidal build:" in line]
    return said[-1] if said else "the wheel holds no compiled module"


def prune(keep: Path, kept: int = KEPT_BUILDS) -> list[Path]:
    """Remove all but the *kept* newest builds of *keep*'s interpreter; the ones removed.

    Every edit of the tree makes a new build: without this the cache grows
    by one build (a few MiB) per benchmarked change.
    """
    abi = keep.name.rsplit("-", 1)[0]
    builds = [p for p in keep.parent.glob(f"{abi}-*")
              if p.is_dir() and "." not in p.name  # a partial build has a suffix
              and p.name.rsplit("-", 1)[0] == abi and (p / _MARKER).is_file()]
    builds.sort(key=lambda p: (p == keep, p.stat().st_mtime), reverse=True)
    removed = builds[kept:]
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
    return removed


def ensure_build(stream: TextIO) -> BuildResult:
    """The compiled build of this tree for this interpreter: reused from the cache, or built.

    Says on *stream* what it does (a build takes a minute or two).
    """
    reason = unavailable_reason()
    root = source_root()
    if reason is not None or root is None:
        return BuildResult(None, reason or "no source")
    target = build_dir(root)
    site = target / SITE
    if (target / _MARKER).is_file() and _is_compiled_site(site):
        print(f"compiled build: cached in {target}", file=stream, flush=True)
        return BuildResult(site, f"cached in {target}")
    print(f"compiled build: building tidal with mypyc for the compiled columns "
          f"(takes 1-2 min) into {target} ...", file=stream, flush=True)
    began = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tidal-bench-build-") as scratch:
        tree, wheels = Path(scratch) / "tree", Path(scratch) / "wheels"
        # A copy: pip builds in place, and the checkout must not get build/.
        shutil.copytree(root / "src", tree / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so"))
        for name in _TOP_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, tree / name)
        env = {k: v for k, v in os.environ.items() if k != "TIDAL_PURE"}
        log, found = "", []
        for cmd in _wheel_commands(tree, wheels):
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            log = done.stdout + done.stderr
            found = sorted(wheels.glob("tidal-*.whl")) if done.returncode == 0 else []
            if found:
                break
        if not found:
            tail = [line for line in log.strip().splitlines() if line.strip()][-3:]
            return BuildResult(None, "the build failed: " + (" | ".join(tail) or "no output"))
        partial = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        with zipfile.ZipFile(found[0]) as wheel:
            wheel.extractall(partial / SITE)
        if not _is_compiled_site(partial / SITE):
            shutil.rmtree(partial, ignore_errors=True)
            return BuildResult(None, f"the build came out pure: {_why_pure(log)}")
        (partial / _MARKER).write_text(f"{found[0].name}\n")
        # Another bench may have finished the same build meanwhile: either is good.
        shutil.rmtree(target, ignore_errors=True)
        try:
            partial.rename(target)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
        if not (target / _MARKER).is_file():
            return BuildResult(None, f"the build could not be stored in {target}")
    prune(target)
    seconds = time.monotonic() - began
    print(f"compiled build: built in {seconds:.0f} s", file=stream, flush=True)
    return BuildResult(target / SITE, f"built in {seconds:.0f} s into {target}")

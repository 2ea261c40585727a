"""``python -m tidal run``: run a script or module as ``python`` would, on tidal.

The program runs as ``__main__`` with the ``sys.argv`` and ``sys.path[0]``
that ``python script.py`` / ``python -m module`` would give it; the only
difference is that asyncio's event-loop policy is tidal's, so
``asyncio.run()``, ``asyncio.Runner()`` and ``asyncio.new_event_loop()``
create tidal loops.  An uncaught exception is reported the way the
interpreter reports it (tidal's own frames left out) and gives exit code 1.
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import signal
import sys
import types
from importlib.machinery import SourceFileLoader
from typing import Any

__all__ = ("run_module", "run_script")


def _prepare() -> None:
    import tidal

    tidal.install()


def _set_path0(entry: str) -> None:
    """Put *entry* where the interpreter would have put the program's directory.

    ``sys.path[0]`` currently names whatever launched tidal (the cwd for
    ``python -m tidal``, the bin directory for the ``tidal`` script), so it is
    replaced, not pushed down.  Under ``-P`` there is no such entry.
    """
    if sys.flags.safe_path:
        return
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.append(entry)


def _report_uncaught(exc: BaseException, keep: Any) -> int:
    """Print *exc* as the interpreter would, dropping frames before *keep*."""
    tb = exc.__traceback__
    while tb is not None and not keep(tb.tb_frame):
        tb = tb.tb_next
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)
    if isinstance(exc, KeyboardInterrupt):
        # The interpreter ends a program killed by ^C by SIGINT, so that the
        # parent shell sees "killed by a signal", not a plain exit status.
        _flush_std()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return 1


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def run_script(path: str, args: list[str]) -> int:
    """Run the file *path* as ``__main__`` with ``sys.argv == [path, *args]``.

    Returns the exit status for an uncaught exception; ``SystemExit`` raised
    by the program propagates unchanged, as it does under ``python``.
    """
    try:
        with io.open_code(path) as fh:
            source = fh.read()
    except OSError as err:
        # Same wording and status as ``python missing.py``.
        print(
            f"{sys.executable}: can't open file {os.path.abspath(path)!r}: "
            f"[Errno {err.errno}] {err.strerror}",
            file=sys.stderr,
        )
        return 2
    _prepare()
    sys.argv[:] = [path, *args]
    _set_path0(os.path.dirname(os.path.realpath(path)))

    # Since 3.9 the interpreter gives __main__ (and its code) an absolute path.
    filename = os.path.abspath(path)
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=filename,
        __cached__=None,
        __package__=None,
        __spec__=None,
        __loader__=SourceFileLoader("__main__", filename),
        __builtins__=builtins,
        __annotations__={},
    )
    # Left in sys.modules afterwards, as the interpreter does: atexit
    # handlers and pickle look __main__ up after the program body ends.
    sys.modules["__main__"] = module
    code = compile(source, filename, "exec", dont_inherit=True)
    try:
        exec(code, module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        return _report_uncaught(exc, lambda frame: frame.f_code is code)
    return 0


def run_module(name: str, args: list[str]) -> int:
    """Run module *name* as ``python -m name *args`` would."""
    _prepare()
    sys.argv[:] = ["-m", *args]
    _set_path0(os.getcwd())
    # runpy's _run_module_as_main is what ``python -m`` itself calls; it
    # leaves the module in sys.modules["__main__"] like the interpreter.
    # The public run_module() restores the old __main__ afterwards instead.
    run_as_main = getattr(runpy, "_run_module_as_main", None)
    try:
        if run_as_main is not None:
            run_as_main(name, alter_argv=True)
        else:  # pragma: no cover - every supported Python has it
            runpy.run_module(name, run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except BaseException as exc:
        # ``python -m`` tracebacks start at runpy's frames; keep them.
        return _report_uncaught(
            exc, lambda frame: frame.f_code.co_name == "_run_module_as_main"
        )
    return 0

"""``python -m tidal run``: run a script or module as ``python`` would, on tidal.

The program runs as ``__main__`` with the ``sys.argv`` and ``sys.path[0]``
that ``python script.py`` / ``python DIR`` / ``python app.zip`` /
``python -m module`` would give it; the only difference is the event loop.
asyncio's event-loop policy is tidal's, so ``asyncio.run()``,
``asyncio.Runner()`` and ``asyncio.new_event_loop()`` create tidal loops, and
the public factories servers pass as ``loop_factory`` (``asyncio.SelectorEventLoop``,
``asyncio.EventLoop``, ``uvloop.new_event_loop``, ``uvloop.run``) are pointed at
tidal while the program runs (see docs/serving.md).  A loop that is not
tidal's, if the program runs one anyway, is reported once on stderr.

An uncaught exception is reported the way the interpreter reports it (tidal's
own frames left out) and gives exit code 1; an uncaught KeyboardInterrupt is
left to the interpreter after the report, so atexit handlers run and the
process then dies by SIGINT, as under ``python``.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import pkgutil
import runpy
import sys
import types
from collections.abc import Callable, Coroutine, Sequence
from importlib.machinery import SourceFileLoader
from typing import Any

__all__ = ("run_module", "run_script", "spawned_child")


def _prepare(debug: bool) -> None:
    import tidal

    if debug:
        # asyncio's own switch, read by every loop (tidal's too) when it is
        # made; child processes inherit it, as they would from the shell.
        os.environ["PYTHONASYNCIODEBUG"] = "1"
    tidal.install()
    _redirect_loop_factories()


_FOREIGN_LOOP_NOTE = (
    "tidal run: warning: this program runs an event loop that is not tidal's: {cls}\n"
    "(tidal run redirects asyncio's and uvloop's public loop factories, not the way this\n"
    "loop was made; see docs/serving.md)\n"
)


def _redirect_loop_factories() -> None:
    """Make asyncio's and uvloop's public loop factories build tidal loops.

    Servers choose their loop themselves (uvicorn passes ``uvloop.new_event_loop``
    or ``asyncio.SelectorEventLoop`` as ``loop_factory``), so installing tidal's
    policy is not enough: those names are pointed at tidal in this process.
    Running any other loop is then reported once, from asyncio's running-loop
    hook, which asyncio's loops and uvloop's call when they start.
    """
    import asyncio

    from tidal._core.events import EventLoopPolicy
    from tidal._core.loop import BaseEventLoop
    from tidal._loop import EventLoop

    modules: list[Any] = [asyncio, sys.modules.get("asyncio.unix_events")]
    for module in modules:
        if module is None:  # pragma: no cover - not on POSIX
            continue
        for name in ("SelectorEventLoop", "EventLoop"):  # EventLoop: 3.13+
            if name in vars(module):
                setattr(module, name, EventLoop)
        if "DefaultEventLoopPolicy" in vars(module):
            # Also what asyncio.set_event_loop_policy(None) falls back to.
            module.DefaultEventLoopPolicy = EventLoopPolicy

    events = asyncio.events
    original: Callable[[Any], None] = events._set_running_loop
    warned = False

    def set_running_loop(loop: Any) -> None:
        nonlocal warned
        if loop is not None and not warned and not isinstance(loop, BaseEventLoop):
            warned = True
            cls = type(loop)
            sys.stderr.write(_FOREIGN_LOOP_NOTE.format(cls=f"{cls.__module__}.{cls.__qualname__}"))
            _flush_std()
        original(loop)

    events._set_running_loop = set_running_loop
    asyncio._set_running_loop = set_running_loop  # type: ignore[attr-defined]

    later: dict[str, Callable[[Any], None]] = {}
    for name, patch in (("uvloop", _patch_uvloop), ("multiprocessing.spawn", _patch_spawn)):
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
        else:
            later[name] = patch
    if later:
        sys.meta_path.insert(0, _PatchOnImport(later))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: patches a module once the program imports it."""

    def __init__(self, patches: dict[str, Callable[[Any], None]]) -> None:
        self._patches = patches
        self._busy = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self._patches.get(fullname)
        if patch is None or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return None
        # The spec and loader stay the module's own; only this loader
        # instance runs the patch after the module body.
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_patch(module: types.ModuleType) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


def _patch_spawn(spawn: Any) -> None:
    # Processes started with multiprocessing's "spawn" method (hypercorn's
    # workers, uvicorn --workers/--reload) are fresh interpreters: have each
    # set itself up as tidal run does before it unpickles its work.  Forked
    # children inherit all of this anyway.
    original = spawn.get_command_line

    def get_command_line(**kwds: Any) -> list[str]:
        command: list[str] = original(**kwds)
        if "-c" in command:  # not a frozen executable
            at = command.index("-c") + 1
            command[at] = f"import tidal._tools.launch as t; t.spawned_child(); {command[at]}"
        return command

    spawn.get_command_line = get_command_line


def spawned_child() -> None:
    """Set up a process that multiprocessing spawned from a ``tidal run`` program.

    Its loops are tidal's too; ``--debug`` reaches it through the environment.
    """
    _prepare(False)


def _patch_uvloop(uvloop: Any) -> None:
    import tidal

    # uvloop.install() and uvloop.EventLoopPolicy call the module's
    # new_event_loop too.  uvloop.Loop itself stays uvloop's.
    uvloop.new_event_loop = tidal.new_event_loop
    uvloop.run = _uvloop_run


def _uvloop_run(
    main: Coroutine[Any, Any, Any], *, loop_factory: Callable[[], Any] | None = None,
    debug: bool | None = None, **run_kwargs: Any,
) -> Any:
    """``uvloop.run()`` under ``tidal run``: *main* runs on a tidal loop."""
    import tidal

    return tidal.run(main, debug=debug, loop_factory=loop_factory, **run_kwargs)


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
        # After an uncaught ^C the interpreter still joins threads and runs
        # atexit handlers, then kills itself by SIGINT so that the parent
        # shell sees "killed by a signal".  Only the interpreter can do all
        # of that: hand it the exception, already reported.
        _report_once(exc)
        raise exc
    return 1


def _report_once(exc: BaseException) -> None:
    previous = sys.excepthook

    def excepthook(kind: Any, value: Any, tb: Any) -> None:
        if value is not exc:
            previous(kind, value, tb)

    sys.excepthook = excepthook


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _run_main_code(keep: Callable[[Any], bool], run: Callable[[], object]) -> int:
    try:
        run()
    except SystemExit:
        raise
    except BaseException as exc:
        return _report_uncaught(exc, keep)
    return 0


def _in_runpy(frame: Any) -> bool:
    # ``python -m`` and ``python DIR`` tracebacks start at runpy's frames.
    return frame.f_code.co_name == "_run_module_as_main"  # type: ignore[no-any-return]


def run_script(path: str, args: list[str], debug: bool = False) -> int:
    """Run *path* as ``python path *args`` would, as ``__main__``.

    *path* is a script, or a folder or zip file holding a ``__main__``
    module.  Returns the exit status for an uncaught exception;
    ``SystemExit`` raised by the program propagates unchanged, as it does
    under ``python``.  *debug* turns on asyncio's debug mode.
    """
    # python first asks whether the path is a place to import from (a folder,
    # a zip file); if so it runs the __main__ module found there.
    location = os.path.join(os.getcwd(), path)
    if pkgutil.get_importer(location) is not None:
        return _run_location(location, path, args, debug)
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
    _prepare(debug)
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
    return _run_main_code(
        lambda frame: frame.f_code is code, lambda: exec(code, module.__dict__)
    )


def _run_location(location: str, path: str, args: list[str], debug: bool) -> int:
    """``python DIR`` / ``python app.zip``: run the ``__main__`` module found there."""
    _prepare(debug)
    sys.argv[:] = [path, *args]
    # python puts the location first even under -P, and as an absolute path.
    if sys.flags.safe_path or not sys.path:
        sys.path.insert(0, location)
    else:
        sys.path[0] = location
    # What python itself calls for this case; a location without __main__
    # exits with python's "can't find '__main__' module in ..." message.
    run_as_main: Callable[..., object] = runpy._run_module_as_main  # type: ignore[attr-defined]
    return _run_main_code(_in_runpy, lambda: run_as_main("__main__", alter_argv=False))


def run_module(name: str, args: list[str], debug: bool = False) -> int:
    """Run module *name* as ``python -m name *args`` would (*debug*: asyncio's debug mode)."""
    _prepare(debug)
    sys.argv[:] = ["-m", *args]
    _set_path0(os.getcwd())
    # runpy's _run_module_as_main is what ``python -m`` itself calls; it
    # leaves the module in sys.modules["__main__"] like the interpreter.
    # The public run_module() restores the old __main__ afterwards instead.
    run_as_main: Callable[..., object] = runpy._run_module_as_main  # type: ignore[attr-defined]
    return _run_main_code(_in_runpy, lambda: run_as_main(name, alter_argv=True))

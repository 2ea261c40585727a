"""The ``tidal`` command line: ``run``, ``bench``, ``ps``, ``pstree``, ``trace``, ``--version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial

__all__ = ("build_parser", "main")

_RUN_DESCRIPTION = """\
Run a Python program exactly as python would run it (python script.py,
python DIR, python app.zip, python -m module), with tidal as asyncio's event
loop: asyncio.run(), asyncio.Runner() and asyncio.new_event_loop() create
tidal loops, and so do the loop factories servers pass to them
(asyncio.SelectorEventLoop, uvloop.new_event_loop...; see docs/serving.md).
Options go before the program; everything after it is the program's
sys.argv, as python sets it.
"""


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    # For --help: _run_command() reads the options itself and hands all
    # that follows the program to it untouched (argparse would take the
    # program's own "-x" options).
    run.add_argument(
        "--debug", action="store_true",
        help="turn on asyncio's debug mode for the program's event loops "
        "(as PYTHONASYNCIODEBUG=1, which child processes inherit)",
    )
    run.add_argument(
        "--watchdog", nargs="?", metavar="=SECONDS",
        help="report each task step or callback that holds the loop longer than SECONDS "
        "(default 0.1) while it still blocks, with the stack, then how long it held the "
        "loop (as TIDAL_WATCHDOG=SECONDS, which child processes inherit; docs/debugging.md)",
    )
    run.add_argument(
        "--trace", metavar="FILE",
        help="record a trace of the program's tasks, callbacks, I/O and GC and write it to "
        "FILE at exit (Chrome trace-event JSON: open it in ui.perfetto.dev; "
        "summary: tidal trace summary FILE; docs/debugging.md)",
    )
    run.add_argument(
        "--trace-buffer", metavar="N", type=int,
        help="keep at most the last N trace events (default 200000)",
    )
    run.add_argument(
        "-m", dest="module", metavar="MODULE",
        help="run library module MODULE as a script, as python -m does",
    )
    run.add_argument(
        "program", nargs="?", metavar="script.py | DIR | app.zip",
        help="a script, or a folder or zip file with a __main__.py",
    )
    run.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")


def _run_parser() -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(
        prog="tidal run", description=_RUN_DESCRIPTION,
        usage="tidal run [--debug] [--watchdog[=SECONDS]] [--trace FILE [--trace-buffer N]] "
        "(script.py | DIR | app.zip | -m MODULE) [args ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(run)
    return run


def _version() -> str:
    import platform

    import tidal

    build = "compiled" if tidal.compiled else "pure Python"
    return f"tidal {tidal.__version__}, {build} (Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    """The parser for everything but ``run``, whose arguments belong to the program."""
    parser = argparse.ArgumentParser(
        prog="tidal",
        description="tidal: a fast coroutine runtime with asyncio's API.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a script (DIR, zip, or -m module) with tidal as asyncio's event loop",
        description=_RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(run)

    bench = commands.add_parser(
        "bench",
        help="benchmark tidal against asyncio, uvloop and rloop",
        description=(
            "Run each workload on asyncio, uvloop and rloop (when installed), on "
            "tidal's loop behind the asyncio API, and on tidal's own API; each "
            "measurement in a fresh interpreter, runtimes interleaved and "
            "repeated.  Prints the median, its spread and the speed relative "
            "to asyncio (x1.00 = asyncio, higher is faster)."
        ),
    )
    bench.add_argument(
        "--quick", action="store_true",
        help="fewer repetitions and smaller N: about half a minute in all",
    )
    bench.add_argument(
        "--only", nargs="+", action="extend", metavar="NAME",
        help="run only these workloads (names or glob patterns; see --list)",
    )
    bench.add_argument(
        "--runtime", nargs="+", action="extend", metavar="NAME",
        help=(
            "run only these runtimes (asyncio is always included as the baseline); "
            "tidal+watchdog, tidal+trace and tidal-loop+watchdog run only when named"
        ),
    )
    bench.add_argument(
        "--repeat", type=int, metavar="N",
        help="fresh processes per workload and runtime (default 5, --quick 1)",
    )
    bench.add_argument(
        "--watchdog-threshold", type=float, metavar="SECONDS",
        help=(
            "the +watchdog runtimes' threshold (default 0.1); a small one samples more "
            "often, to measure what each sample costs"
        ),
    )
    bench.add_argument("--no-floors", action="store_true", help="skip the raw floor rows")
    bench.add_argument(
        "--no-compiled", action="store_true",
        help="leave out the compiled-build columns (3.12+; built once into ~/.cache/tidal-bench)",
    )
    bench.add_argument("--json", metavar="FILE", help="write every raw sample to FILE")
    bench.add_argument("--markdown", metavar="FILE", help="write the table as Markdown to FILE")
    bench.add_argument(
        "--chart", metavar="FILE", help="draw relative speeds as a bar chart (PNG, matplotlib)"
    )
    bench.add_argument("--list", action="store_true", help="list workloads and runtimes")

    from tidal._tools.inspect_cli import add_commands

    add_commands(commands)  # ps, pstree

    trace = commands.add_parser(
        "trace", help="read a trace written by tidal run --trace",
        description="Read a trace written by tidal run --trace or tidal.start_trace().",
    )
    trace_commands = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    summary = trace_commands.add_parser(
        "summary", help="the top tasks by time held (their steps) and by time waited",
        description="Print the top tasks by time held (the sum of their steps) and by "
        "time waited (between steps), with what they mostly waited on.",
    )
    summary.add_argument("file", metavar="FILE", help="the trace (JSON)")
    summary.add_argument("--top", type=int, default=10, metavar="N", help="rows per table")
    return parser


def _run_command(args: list[str]) -> int:
    from tidal._tools import launch

    debug = False
    trace: list[str | int | None] = [None, None]  # FILE, buffer
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-h", "--help"):
            _run_parser().print_help(sys.stdout)
            return 0
        if arg == "--debug":
            debug = True
        elif arg == "--watchdog" or arg.startswith("--watchdog="):
            error = _start_watchdog(arg.partition("=")[2] or "0.1")
            if error is not None:
                return _run_error(error)
        elif arg.partition("=")[0] in ("--trace", "--trace-buffer"):
            option, equals, value = arg.partition("=")
            if not equals:
                if i + 1 == len(args):
                    return _run_error(f"argument {option}: expected a value")
                i += 1
                value = args[i]
            if option == "--trace":
                trace[0] = value
            elif not value.isdigit() or int(value) <= 0:
                return _run_error(
                    f"argument --trace-buffer: expected a positive count, got {value!r}"
                )
            else:
                trace[1] = int(value)
        elif arg == "-m":
            if i + 1 == len(args):
                return _run_error("argument -m: expected a module name")
            return _traced(trace, partial(launch.run_module, args[i + 1], args[i + 2:], debug))
        elif arg.startswith("-m"):  # "-mpkg.mod", as python accepts it
            return _traced(trace, partial(launch.run_module, arg[2:], args[i + 1:], debug))
        elif arg.startswith("-") and arg != "-":
            return _run_error(f"unknown option {arg!r}")
        else:
            break
        i += 1
    if i == len(args):
        return _run_error("a script, a folder, a zip file or -m MODULE is required")
    return _traced(trace, partial(launch.run_script, args[i], args[i + 1:], debug))


def _traced(trace: list[str | int | None], run: Callable[[], int]) -> int:
    # --trace: record while the program runs, write the file however it ends.
    path, buffer = trace
    if path is None:
        return run()
    from tidal._tools.trace import DEFAULT_BUFFER, start_trace, stop_trace

    start_trace(str(path), buffer=buffer if isinstance(buffer, int) else DEFAULT_BUFFER)
    try:
        return run()
    finally:
        written = stop_trace()
        if written is not None:
            print(f"tidal run: trace written to {written}", file=sys.stderr)


def _start_watchdog(value: str) -> str | None:
    # tidal is imported already: start the watchdog here, and pass the
    # setting on to child processes.
    import os

    from tidal._tools.watchdog import watch_blocking

    try:
        threshold = float(value)
        watch_blocking(threshold)
    except ValueError:
        return f"argument --watchdog: expected a positive number of seconds, got {value!r}"
    os.environ["TIDAL_WATCHDOG"] = value
    return None


def _run_error(message: str) -> int:
    parser = _run_parser()
    parser.print_usage(sys.stderr)
    print(f"tidal run: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Parse *argv* (default ``sys.argv[1:]``) and run the command; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "run":
        return _run_command(args[1:])
    parser = build_parser()
    options = parser.parse_args(args)
    if options.command == "bench":
        from tidal._tools.bench.runner import bench_main

        return bench_main(options)
    if options.command == "trace":
        if options.trace_command != "summary":
            print("tidal trace: error: a subcommand is required: summary", file=sys.stderr)
            return 2
        from tidal._tools.trace_summary import summary_main

        return summary_main(options.file, options.top, sys.stdout, sys.stderr)
    if options.command in ("ps", "pstree"):
        from tidal._tools.inspect_cli import run

        return run(options)
    parser.print_help(sys.stderr)
    return 2

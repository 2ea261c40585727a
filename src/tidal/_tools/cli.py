"""The ``tidal`` command line: ``run``, ``bench``, ``--version``."""

from __future__ import annotations

import argparse
import sys

__all__ = ("build_parser", "main")

_RUN_USAGE = """\
usage: tidal run script.py [args ...]
       tidal run -m module [args ...]

Run a Python program exactly as ``python script.py`` (or ``python -m module``)
would, with tidal as asyncio's event loop: asyncio.run(), asyncio.Runner()
and asyncio.new_event_loop() create tidal loops.
"""


def _version() -> str:
    import platform

    import tidal

    return f"tidal {tidal.__version__} (Python {platform.python_version()})"


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
        help="run a script (or -m module) with tidal as asyncio's event loop",
        description=_RUN_USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Declared for --help only: main() hands everything after "run" to the
    # program untouched, as argparse cannot pass options like "-x" through.
    run.add_argument("target", metavar="script.py | -m module")
    run.add_argument("args", nargs=argparse.REMAINDER)

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
        help="run only these runtimes (asyncio is always included as the baseline)",
    )
    bench.add_argument(
        "--repeat", type=int, metavar="N",
        help="fresh processes per workload and runtime (default 5, --quick 1)",
    )
    bench.add_argument("--no-floors", action="store_true", help="skip the raw floor rows")
    bench.add_argument("--json", metavar="FILE", help="write every raw sample to FILE")
    bench.add_argument("--markdown", metavar="FILE", help="write the table as Markdown to FILE")
    bench.add_argument(
        "--chart", metavar="FILE", help="draw relative speeds as a bar chart (PNG, matplotlib)"
    )
    bench.add_argument("--list", action="store_true", help="list workloads and runtimes")
    return parser


def _run_command(args: list[str]) -> int:
    from tidal._tools import launch

    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(_RUN_USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    first = args[0]
    if first == "-m":
        if len(args) < 2:
            print("tidal run: argument -m: expected a module name", file=sys.stderr)
            return 2
        return launch.run_module(args[1], args[2:])
    if first.startswith("-m"):  # "-mpkg.mod", as python accepts it
        return launch.run_module(first[2:], args[1:])
    if first.startswith("-") and first != "-":
        print(f"tidal run: unknown option {first!r}\n\n{_RUN_USAGE}", end="", file=sys.stderr)
        return 2
    return launch.run_script(first, args[1:])


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
    parser.print_help(sys.stderr)
    return 2

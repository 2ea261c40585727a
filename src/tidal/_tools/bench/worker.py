"""One measurement in a fresh interpreter.

``python -I path/to/worker.py WORKLOAD RUNTIME --n N --inner K`` runs the
workload (after a small warm-up run) K times on the runtime and prints one
line ``RESULT_MARK {json}`` on stdout: ``{"status": "ok", "samples":
{metric: [values]}}``, or ``{"status": "n/a" | "error", "reason": ...}``.

"n/a" means the runtime lacks something the workload uses (tidal while a
piece of its API has not landed, a loop without ``create_server``...);
anything else that goes wrong is an "error".

It is run as a file, not with ``-m``, so that the baseline runtimes
(asyncio, uvloop, rloop) never execute ``tidal/__init__``: their process
holds no tidal code beyond the benchmark's own modules, and a tidal that
fails to import cannot take the baselines down with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import types
from types import ModuleType
from typing import Any

RESULT_MARK = "@@tidal-bench-result@@"
TIDAL_RUNTIMES = (
    "tidal", "tidal-loop", "tidal-compiled", "tidal-loop-compiled",
    "tidal+watchdog", "tidal+trace", "tidal-loop+watchdog",
)

__all__ = ("RESULT_MARK", "classify_failure", "main", "measure")


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """("n/a" or "error", one-line reason) for an exception a workload raised."""
    reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if isinstance(exc, NotImplementedError):
        return "n/a", reason or "NotImplementedError"
    # A missing name on the API module itself (tidal.gather before it lands),
    # not an AttributeError from inside the runtime, which is a bug.
    if isinstance(exc, AttributeError) and isinstance(getattr(exc, "obj", None), ModuleType):
        return "n/a", reason
    return "error", reason


def _bootstrap(runtime: str, site: str | None = None) -> None:
    """Make ``tidal._tools.bench`` importable from the tree this file is in.

    For a baseline runtime, ``tidal`` is registered as a bare package (its
    ``__path__`` only) so that importing the benchmark modules does not run
    ``tidal/__init__``.  *site* (a compiled runtime's unpacked build) goes
    before the tree, so that all of tidal, the benchmark included, comes
    from the build: the same source, compiled.
    """
    package_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.dirname(package_dir))
    if site is not None:
        sys.path.insert(0, site)
    if runtime not in TIDAL_RUNTIMES and "tidal" not in sys.modules:
        bare = types.ModuleType("tidal")
        bare.__path__ = [package_dir]
        sys.modules["tidal"] = bare


def measure(workload: str, runtime: str, n: int, inner: int, warmup: bool = True) -> dict[str, Any]:
    """Run *workload* on *runtime* in this process and return the result record."""
    from tidal._tools.bench.registry import get_runtime, get_workload

    wl = get_workload(workload)
    aio: Any = None
    factory: Any = None
    samples: dict[str, list[float]] = {}
    instrument_off: Any = None
    try:
        if not wl.raw:
            rt = get_runtime(runtime)
            # A compiled runtime's build was made (or found) by the runner.
            if not rt.compiled and not rt.available():
                return {"status": "n/a", "reason": rt.unavailable_reason()}
            missing = wl.missing()
            if missing:
                return {"status": "n/a", "reason": f"{', '.join(missing)} not installed"}
            aio, factory = rt.load()
            if rt.compiled and not sys.modules["tidal"].compiled:
                # The pure build measured under the compiled label is worse than none.
                return {"status": "error", "reason": "the pure build of tidal was imported"}
            instrument_off = rt.instrument_on()
        try:
            if wl.in_process_repeats and warmup:
                wl.fn(aio, factory, max(1, n // 10))
            for _ in range(inner if wl.in_process_repeats else 1):
                for key, value in wl.fn(aio, factory, n).items():
                    samples.setdefault(key, []).append(value)
        finally:
            if instrument_off is not None:
                instrument_off()  # a trace is written here: after the last sample
    except Exception as exc:
        status, reason = classify_failure(exc)
        if status == "error":
            traceback.print_exc()
        return {"status": status, "reason": reason}
    return {"status": "ok", "samples": samples}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: measure and print the result line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload")
    parser.add_argument("runtime")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--inner", type=int, default=1)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--site", help="put this directory first on sys.path (a compiled build)")
    opts = parser.parse_args(argv)
    _bootstrap(opts.runtime, opts.site)
    result = measure(opts.workload, opts.runtime, opts.n, opts.inner, not opts.no_warmup)
    sys.stdout.flush()
    print(RESULT_MARK, json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a workload and a runtime are, and the table of both.

A workload is a plain function ``fn(aio, loop_factory, n) -> {metric: value}``
written once against the asyncio API as found on the module ``aio``; which
module and which loop it gets decides which runtime it measures.  A *floor*
is a workload with no runtime at all: a raw loop of syscalls or generator
switches that bounds what any event loop could reach on the same job.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = (
    "BYTES_PER_TASK",
    "FLOOR",
    "MIB",
    "REQ_PER_S",
    "RUNTIMES",
    "US_PER_OP",
    "LoopFactory",
    "Metric",
    "Runtime",
    "Workload",
    "all_workloads",
    "countdown",
    "get_runtime",
    "get_workload",
    "register",
    "run_main",
)

LoopFactory = Callable[[], Any]
WorkloadFn = Callable[[Any, Any, int], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """One number a workload reports: its key, unit and which way is better."""

    key: str
    unit: str
    higher_is_better: bool = False
    label: str = ""


US_PER_OP = Metric("time", "us/op")
REQ_PER_S = Metric("rate", "req/s", higher_is_better=True)
BYTES_PER_TASK = Metric("bytes", "B/task")
MIB = Metric("peak_rss", "MiB")


@dataclass(frozen=True)
class Workload:
    """A benchmark: the function, its sizes and how to run and show it."""

    name: str
    title: str
    fn: WorkloadFn
    n: int
    quick_n: int
    metrics: tuple[Metric, ...] = (US_PER_OP,)
    #: name of the floor workload that bounds this one, if any
    floor: str | None = None
    #: a floor: runs once per repetition with no runtime
    raw: bool = False
    #: False when a second run in the same process would measure something
    #: else (memory high-water marks, a client process per run)
    in_process_repeats: bool = True
    #: run it under --quick (the slower variants of a family are skipped)
    quick: bool = True
    #: seconds a single worker process may take before it is killed
    timeout: float = 120.0
    params: dict[str, Any] = field(default_factory=dict)
    #: modules the workload imports beyond the runtime (a framework); it is
    #: skipped with a note when one is not installed
    requires: tuple[str, ...] = ()
    #: at most this many rounds, whatever --repeat says (long workloads)
    max_repeat: int | None = None

    def missing(self) -> list[str]:
        """The modules of :attr:`requires` that this interpreter cannot import."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    @property
    def doc(self) -> str:
        """First paragraph of the function's docstring: what one op is."""
        text = (self.fn.__doc__ or "").strip()
        return " ".join(text.split("\n\n")[0].split())


_WORKLOADS: dict[str, Workload] = {}
_FAMILIES = ("wl_tasks", "wl_sync", "wl_net", "wl_frameworks", "floors")
FLOOR = "floor"
#: How the runner hands ``--watchdog-threshold`` to its workers.
WATCHDOG_THRESHOLD_ENV = "TIDAL_BENCH_WATCHDOG_THRESHOLD"


def register(workload: Workload) -> Workload:
    """Add *workload* to the table (names are unique)."""
    if workload.name in _WORKLOADS:
        raise ValueError(f"duplicate workload {workload.name!r}")
    _WORKLOADS[workload.name] = workload
    return workload


def all_workloads() -> list[Workload]:
    """Every workload, in the order the families declare them."""
    for family in _FAMILIES:
        importlib.import_module(f"{__package__}.{family}")
    return list(_WORKLOADS.values())


def get_workload(name: str) -> Workload:
    """The workload called *name* (KeyError if there is none)."""
    all_workloads()
    return _WORKLOADS[name]


@dataclass(frozen=True)
class Runtime:
    """An API module plus an event-loop implementation."""

    name: str
    label: str
    api: str
    loop_module: str
    description: str
    #: "compiled": tidal's mypyc build, imported from the bench's build cache
    #: (:mod:`.compiled`) instead of the source tree
    build: str = "source"
    #: "watchdog" or "trace": that observability tool is on in the worker
    #: process (from before the warm-up to after the last sample)
    instrument: str = ""
    #: the runtime an instrumented one is compared with ("overhead vs ...")
    base: str | None = None
    #: in the table without --runtime; the instrumented ones are opt-in
    default: bool = True

    @property
    def compiled(self) -> bool:
        """Whether this runtime runs tidal's compiled build."""
        return self.build == "compiled"

    def available(self) -> bool:
        """Whether the loop's package is installed for this interpreter.

        For a compiled runtime: whether a compiled build can be made here
        (it is built, or found in the cache, only when it is selected).
        """
        if self.compiled:
            from tidal._tools.bench.compiled import unavailable_reason

            return unavailable_reason() is None
        return importlib.util.find_spec(self.loop_module) is not None

    def unavailable_reason(self) -> str:
        """Why :meth:`available` is False, as a note for the report."""
        if self.compiled:
            from tidal._tools.bench.compiled import unavailable_reason

            return unavailable_reason() or ""
        return f"{self.loop_module} not installed"

    def version(self) -> str | None:
        """The loop package's version, or None when it is not installed."""
        if self.loop_module == "asyncio":
            return sys.version.split()[0]
        if self.loop_module == "tidal":
            import tidal

            return str(tidal.__version__)
        try:
            return importlib.metadata.version(self.loop_module)
        except importlib.metadata.PackageNotFoundError:
            return None

    def load(self) -> tuple[ModuleType, LoopFactory]:
        """Import the API module and return it with the loop factory."""
        aio = importlib.import_module(self.api)
        if self.loop_module == "asyncio":
            import asyncio

            # What asyncio.run() uses on Linux, named directly so that a
            # policy installed by someone else cannot change the baseline.
            return aio, asyncio.SelectorEventLoop
        factory: LoopFactory = importlib.import_module(self.loop_module).new_event_loop
        return aio, factory

    def instrument_on(self) -> Callable[[], None]:
        """Turn this runtime's instrument on for the process; returns what turns it off.

        The watchdog at its default threshold (or ``--watchdog-threshold``'s),
        for every loop of the process (what ``TIDAL_WATCHDOG=on`` does);
        tracing into a ring buffer of the default size, written to a temporary
        file at the end (outside every timed part) and removed.
        """
        if self.instrument == "watchdog":
            import os

            from tidal._tools.watchdog import DEFAULT_THRESHOLD, watch_blocking

            watch_blocking(float(os.environ.get(WATCHDOG_THRESHOLD_ENV, DEFAULT_THRESHOLD)))
            return lambda: watch_blocking(None)
        if self.instrument == "trace":
            import os
            import tempfile

            from tidal._tools.trace import DEFAULT_BUFFER, start_trace, stop_trace

            handle, path = tempfile.mkstemp(prefix="tidal-bench-", suffix=".json")
            os.close(handle)
            start_trace(path, buffer=DEFAULT_BUFFER)

            def stop() -> None:
                try:
                    stop_trace()
                finally:
                    os.unlink(path)

            return stop
        if self.instrument:
            raise ValueError(f"unknown instrument {self.instrument!r}")
        return lambda: None


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("asyncio", "asyncio", "asyncio", "asyncio", "the interpreter's asyncio"),
    Runtime("uvloop", "uvloop", "asyncio", "uvloop", "asyncio API on uvloop's loop"),
    Runtime("rloop", "rloop", "asyncio", "rloop", "asyncio API on rloop's loop"),
    Runtime(
        "tidal-loop", "tidal loop", "asyncio", "tidal",
        "asyncio API on tidal's loop (asyncio.run(..., loop_factory=tidal.new_event_loop))",
    ),
    Runtime("tidal", "tidal", "tidal", "tidal", "tidal's own API on tidal's loop"),
    Runtime(
        "tidal-loop-compiled", "tidal loop (compiled)", "asyncio", "tidal",
        "tidal loop, with tidal's mypyc build (3.12+, built once into a cache)", "compiled",
    ),
    Runtime(
        "tidal-compiled", "tidal (compiled)", "tidal", "tidal",
        "tidal's own API, with tidal's mypyc build (3.12+, built once into a cache)", "compiled",
    ),
    # Opt-in (--runtime): what seeing inside costs, next to the plain runtime.
    Runtime(
        "tidal+watchdog", "tidal+watchdog", "tidal", "tidal",
        "tidal, with the blocking-call watchdog on (threshold 0.1 s)",
        instrument="watchdog", base="tidal", default=False,
    ),
    Runtime(
        "tidal+trace", "tidal+trace", "tidal", "tidal",
        "tidal, tracing into the default ring buffer (written at exit, untimed)",
        instrument="trace", base="tidal", default=False,
    ),
    Runtime(
        "tidal-loop+watchdog", "tidal loop+watchdog", "asyncio", "tidal",
        "asyncio API on tidal's loop, with the blocking-call watchdog on (0.1 s)",
        instrument="watchdog", base="tidal-loop", default=False,
    ),
)


def get_runtime(name: str) -> Runtime:
    """The runtime called *name* (KeyError if there is none)."""
    for runtime in RUNTIMES:
        if runtime.name == name:
            return runtime
    raise KeyError(name)


def _drain_and_close(loop: Any) -> None:
    # What a Runner does on exit, for an API module that has no Runner yet.
    pending = [t for t in _all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        waiter = loop.create_future()
        remaining = [len(pending)]

        def _one_done(_: Any) -> None:
            remaining[0] -= 1
            if remaining[0] == 0 and not waiter.done():
                waiter.set_result(None)

        for task in pending:
            task.add_done_callback(_one_done)
        loop.run_until_complete(waiter)
    loop.run_until_complete(loop.shutdown_asyncgens())
    shutdown_executor = getattr(loop, "shutdown_default_executor", None)
    if shutdown_executor is not None:
        loop.run_until_complete(shutdown_executor())


def _all_tasks(loop: Any) -> list[Any]:
    import asyncio

    return list(asyncio.all_tasks(loop))


def countdown(loop: Any, n: int) -> tuple[Any, Callable[[], None]]:
    """A future of *loop* and a callback that completes it on its *n*-th call."""
    done = loop.create_future()
    left = [n]

    def tick() -> None:
        left[0] -= 1
        if left[0] == 0:
            done.set_result(None)

    return done, tick


def run_main(
    aio: Any, factory: LoopFactory, make_coro: Callable[[], Coroutine[Any, Any, Any]],
) -> Any:
    """Run ``make_coro()`` to completion on a new loop from *factory*.

    Uses the API module's own ``Runner`` (asyncio's on 3.11 too, which has
    ``loop_factory``), so running the program is part of what "the tidal
    API" means; falls back to driving the loop by hand while tidal's
    Runner has not landed.
    """
    runner_cls = getattr(aio, "Runner", None)
    if runner_cls is not None:
        with runner_cls(loop_factory=factory) as runner:
            return runner.run(make_coro())
    loop = factory()
    aio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(make_coro())
        _drain_and_close(loop)
        return result
    finally:
        aio.set_event_loop(None)
        loop.close()

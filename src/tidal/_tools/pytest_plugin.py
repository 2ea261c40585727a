"""tidal's pytest plugin, registered through the ``pytest11`` entry point.

* ``@pytest.mark.tidal`` (or ``pytest --tidal`` / ini ``tidal = true`` for
  the whole run): async test functions, and the async fixtures they use, run
  on a :class:`tidal.testing.EventLoop`;
* the ``tidal_clock`` fixture: the test runs on virtual time
  (:class:`tidal.testing.VirtualClock`, autojump on);
* ``--tidal-shuffle=SEED|random``: the ready order of tasks that become
  ready together is shuffled, seeded per test; a failing test prints the
  seed that replays it.

Tests that pytest-asyncio or anyio run stay theirs: the clock and the shuffle
reach them when their loop is a ``tidal.testing`` loop (``--tidal``
configures pytest-asyncio so; see docs/testing.md for both).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import random
import sys
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

_SETTINGS = pytest.StashKey[Any]()
_OWNED = pytest.StashKey[bool]()
_STATE = pytest.StashKey["_State"]()

_DOC = "docs/testing.md"


class _State:
    """The run's options and the shared loop."""

    def __init__(self, config: pytest.Config) -> None:
        opt = config.getoption("tidal")
        self.all: bool = bool(opt if opt is not None else config.getini("tidal"))
        raw = config.getoption("tidal_shuffle") or config.getini("tidal_shuffle") or None
        self.seed: int | None = None
        if raw is not None:
            raw = str(raw).strip()
            if raw == "random":
                self.seed = random.SystemRandom().randrange(1 << 32)
            else:
                try:
                    self.seed = int(raw)
                except ValueError:
                    raise pytest.UsageError(
                        f"--tidal-shuffle takes an integer seed or 'random', not {raw!r}"
                    ) from None
        # One loop at a time, kept as long as something holds a lease on it:
        # a running test, or an async fixture that is still set up.
        self.runner: Any = None
        self.leases = 0

    @contextlib.contextmanager
    def lease(self) -> Iterator[Any]:
        """The shared tidal runner, created if no one holds it."""
        if self.runner is None:
            import tidal.testing
            from tidal._api.runners import Runner

            self.runner = Runner(loop_factory=tidal.testing.new_event_loop)
            asyncio.set_event_loop(self.runner.get_loop())
        self.leases += 1
        try:
            yield self.runner
        finally:
            self.leases -= 1
            if not self.leases:
                runner, self.runner = self.runner, None
                try:
                    runner.close()
                finally:
                    asyncio.set_event_loop(None)


# -- options and configuration --------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """--tidal, --tidal-shuffle and their ini twins."""
    group = parser.getgroup("tidal", "tidal (tidal.testing, docs/testing.md)")
    group.addoption(
        "--tidal", action="store_true", default=None, dest="tidal",
        help="run every async test on tidal's loop (pytest-asyncio's tests too)",
    )
    group.addoption(
        "--tidal-shuffle", metavar="SEED", default=None, dest="tidal_shuffle",
        help="shuffle the ready order of tasks that become ready together, seeded "
        "with SEED (an integer, or 'random'); a failure prints the seed",
    )
    parser.addini("tidal", type="bool", default=False, help="same as --tidal")
    parser.addini("tidal_shuffle", default="", help="same as --tidal-shuffle")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; under --tidal, give pytest-asyncio tidal's loop."""
    config.addinivalue_line(
        "markers",
        "tidal(shuffle=None): run this async test on tidal's loop (tidal.testing.EventLoop); "
        "shuffle=SEED replays a ready-order shuffle",
    )
    state = _State(config)
    config.stash[_STATE] = state
    hook = config.pluginmanager.hook
    if (
        state.all
        and config.pluginmanager.has_plugin("asyncio")
        and hasattr(hook, "pytest_asyncio_loop_factories")
    ):
        config.pluginmanager.register(_AsyncioLoopFactories(), "tidal-asyncio-loop-factories")


class _AsyncioLoopFactories:
    """pytest-asyncio's own hook for the loop it creates: tidal's test loop."""

    @pytest.hookimpl(trylast=True)  # a conftest's own answer comes first
    def pytest_asyncio_loop_factories(self, config: pytest.Config, item: pytest.Item) -> Any:
        import tidal.testing

        return {"tidal": tidal.testing.new_event_loop}


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Say how tidal is set up for this run."""
    state = config.stash[_STATE]
    parts = []
    if state.all:
        parts.append("every async test on tidal's loop")
    if state.seed is not None:
        parts.append(f"ready-order shuffle seed {state.seed} (--tidal-shuffle={state.seed})")
    return ["tidal: " + "; ".join(parts)] if parts else None


# -- which tests are tidal's --------------------------------------------------------


def _claimed_elsewhere(item: pytest.Function) -> bool:
    # pytest-asyncio's items are its own class; anyio's ask for anyio_backend.
    if "anyio_backend" in item.fixturenames:
        return True
    plugin = sys.modules.get("pytest_asyncio.plugin")
    cls = getattr(plugin, "PytestAsyncioFunction", None)
    return cls is not None and isinstance(item, cls)


def _wants_tidal(item: pytest.Item) -> bool:
    if item.get_closest_marker("tidal") is not None:
        return True
    return "tidal_clock" in getattr(item, "fixturenames", ())


def _owns(item: Any) -> bool:
    """True if tidal's plugin runs this test and its async fixtures."""
    if not isinstance(item, pytest.Function):
        return False
    owned = item.stash.get(_OWNED, None)
    if owned is None:
        owned = not _claimed_elsewhere(item) and (
            item.config.stash[_STATE].all or _wants_tidal(item)
        )
        item.stash[_OWNED] = owned
    return owned


# -- per-test settings: the clock and the shuffle seed ---------------------------------


def _test_seed(item: pytest.Item, run_seed: int | None) -> int | None:
    marker = item.get_closest_marker("tidal")
    if marker is not None and marker.kwargs.get("shuffle") is not None:
        return int(marker.kwargs["shuffle"])
    if run_seed is None:
        return None
    # Each test its own permutation, replayable from the run's seed alone.
    return (run_seed * 1_000_003 ^ zlib.crc32(item.nodeid.encode())) & 0xFFFFFFFF


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Make the test's settings current before any fixture runs."""
    from tidal.testing import VirtualClock, _current

    state = item.config.stash[_STATE]
    seed = _test_seed(item, state.seed)
    clock = VirtualClock() if "tidal_clock" in getattr(item, "fixturenames", ()) else None
    if clock is None and seed is None:
        _current.settings = None
        return
    settings = _current.TestSettings(clock, seed)
    item.stash[_SETTINGS] = settings
    _current.settings = settings


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Keep the settings through fixture teardown, then drop them."""
    yield
    from tidal.testing import _current

    settings = item.stash.get(_SETTINGS, None)
    _current.settings = None
    if settings is not None:
        for loop in settings.loops:
            if not loop.is_closed() and not loop.is_running():
                loop._apply_settings(None)


@pytest.fixture
def tidal_clock(request: pytest.FixtureRequest) -> Any:
    """The test's :class:`tidal.testing.VirtualClock` (autojump on): virtual time."""
    settings = request.node.stash.get(_SETTINGS, None)
    if settings is None or settings.clock is None:
        pytest.fail("tidal_clock used outside a test function", pytrace=False)
    return settings.clock


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Print the shuffle seed of a failing test, and how to replay it."""
    outcome = yield
    report = outcome.get_result()
    settings = item.stash.get(_SETTINGS, None)
    if report.failed and settings is not None and settings.shuffle is not None:
        run_seed = item.config.stash[_STATE].seed
        how = f"--tidal-shuffle={run_seed}, or " if run_seed is not None else ""
        report.sections.append((
            "tidal",
            f"ready order shuffled with seed {settings.shuffle}; replay with "
            f"{how}@pytest.mark.tidal(shuffle={settings.shuffle})",
        ))


# -- running tests and async fixtures ---------------------------------------------------


def _run(runner: Any, coro: Any) -> Any:
    return runner.run(coro)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a tidal test's coroutine on the shared tidal loop."""
    if not _owns(pyfuncitem) or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    funcargs = pyfuncitem.funcargs
    testargs = {arg: funcargs[arg] for arg in pyfuncitem._fixtureinfo.argnames}
    with pyfuncitem.config.stash[_STATE].lease() as runner:
        _run(runner, pyfuncitem.obj(**testargs))
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A tidal test that another plugin runs: check that it runs on a tidal test loop."""
    if (
        not isinstance(item, pytest.Function)
        or _owns(item)
        or not _wants_tidal(item)
        or not inspect.iscoroutinefunction(item.obj)
    ):
        yield
        return
    original = item.obj
    item.obj = _checked(item, original)
    try:
        yield
    finally:
        item.obj = original


def _checked(item: pytest.Item, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        _check_loop(item)
        return await func(*args, **kwargs)

    return checked


def _check_loop(item: pytest.Item) -> None:
    import tidal.testing

    loop = asyncio.get_running_loop()
    settings = item.stash.get(_SETTINGS, None)
    if not isinstance(loop, tidal.testing.EventLoop):
        pytest.fail(
            f"this test asks for tidal (mark or tidal_clock), but another plugin runs it on "
            f"{type(loop).__module__}.{type(loop).__qualname__}: give that plugin the loop "
            f"factory tidal.testing.new_event_loop (see {_DOC})",
            pytrace=False,
        )
    if settings is not None and settings.clock is not None and loop.clock is not settings.clock:
        pytest.fail(
            "tidal_clock is not the clock of this test's loop (the loop already has one, "
            f"or another loop took it); see {_DOC}",
            pytrace=False,
        )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, Any, None]:
    """Async fixtures of tidal's tests run on the shared tidal loop."""
    func = fixturedef.func
    if not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)) or not _owns(
        getattr(request, "_pyfuncitem", None)
    ):
        yield
        return
    from _pytest.fixtures import resolve_fixture_function

    bound = resolve_fixture_function(fixturedef, request)
    state: _State = request.config.stash[_STATE]
    fixturedef.func = _sync_fixture(bound, state)
    try:
        yield
    finally:
        fixturedef.func = func


def _sync_fixture(func: Callable[..., Any], state: _State) -> Callable[..., Any]:
    # Not functools.wraps: copying __dict__ would copy pytest-asyncio's
    # marks, and it would take the wrapper for one of its own fixtures.
    def tidal_fixture(**kwargs: Any) -> Iterator[Any]:
        lease = state.lease()
        runner = lease.__enter__()
        try:
            if inspect.isasyncgenfunction(func):
                agen = func(**kwargs)
                value = _run(runner, agen.__anext__())
                yield value
                _run(runner, _finish_asyncgen(agen))
            else:
                yield _run(runner, func(**kwargs))
        except BaseException:
            if not lease.__exit__(*sys.exc_info()):
                raise
        else:
            lease.__exit__(None, None, None)

    tidal_fixture.__name__ = getattr(func, "__name__", "tidal_fixture")
    tidal_fixture.__qualname__ = getattr(func, "__qualname__", tidal_fixture.__name__)
    tidal_fixture.__doc__ = getattr(func, "__doc__", None)
    return tidal_fixture


async def _finish_asyncgen(agen: Any) -> None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    raise ValueError("an async fixture must yield only once")

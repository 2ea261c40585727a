"""tidal's pytest plugin, run by pytest's own ``pytester`` beside real pytest-asyncio and anyio."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# Inner runs skip plugins they do not need (hypothesis's is slow to load).
FLAGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
{extra}
"""


def run(pytester: pytest.Pytester, source: str, *args: str, ini: str = "",
        conftest: str | None = None) -> pytest.RunResult:
    pytester.makeini(INI.format(extra=ini))
    if conftest is not None:
        pytester.makeconftest(conftest)
    pytester.makepyfile(test_it=source)
    return pytester.runpytest(*FLAGS, *args)


# -- plain pytest -------------------------------------------------------------------------

PLAIN = '''
import asyncio, pytest, tidal, tidal.testing

loops = []

@pytest.fixture
async def conn():
    await asyncio.sleep(0)
    yield asyncio.get_running_loop()
    await asyncio.sleep(0)
    loops.append("torn down")

@pytest.fixture(scope="module")
async def shared():
    return asyncio.get_running_loop()

@pytest.mark.tidal
async def test_marked(conn):
    loop = asyncio.get_running_loop()
    assert type(loop) is tidal.testing.EventLoop
    assert conn is loop
    assert tidal.current_task() is not None
    loops.append(loop)

@pytest.mark.tidal
async def test_module_fixture_keeps_its_loop(shared):
    assert asyncio.get_running_loop() is shared
    loops.append(shared)

@pytest.mark.tidal
async def test_module_fixture_again(shared):
    assert asyncio.get_running_loop() is shared
    assert loops[-1] is shared

@pytest.mark.tidal
def test_sync_test_with_async_fixture(conn):
    assert isinstance(conn, tidal.testing.EventLoop) and not conn.is_running()

async def test_unmarked():
    assert isinstance(asyncio.get_running_loop(), tidal.EventLoop)
'''


def test_marker_runs_tests_and_async_fixtures_on_tidal(pytester: pytest.Pytester) -> None:
    result = run(pytester, PLAIN, "-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_unmarked*", "*async def functions are not natively*"])


def test_tidal_option_runs_every_async_test(pytester: pytest.Pytester) -> None:
    result = run(pytester, PLAIN, "--tidal", "-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["tidal: every async test on tidal's loop*"])


def test_tidal_ini_option(pytester: pytest.Pytester) -> None:
    result = run(pytester, PLAIN, "-p", "no:asyncio", ini="tidal = true")
    result.assert_outcomes(passed=5)


CLOCK = '''
import asyncio, time, pytest

async def test_jumps(tidal_clock):
    loop = asyncio.get_running_loop()
    wall = time.perf_counter()
    await asyncio.sleep(3600)
    assert loop.time() == 3600.0 == tidal_clock.time()
    tidal_clock.advance(0.5)
    assert loop.time() == 3600.5
    assert time.perf_counter() - wall < 1

async def test_by_hand(tidal_clock):
    tidal_clock.autojump = False
    task = asyncio.ensure_future(asyncio.sleep(10, "done"))
    await asyncio.sleep(0)
    tidal_clock.advance(10)
    assert await task == "done"
    assert asyncio.get_running_loop().time() == 10.0

@pytest.fixture
async def server_started_at(tidal_clock):
    await asyncio.sleep(5)
    return asyncio.get_running_loop().time()

async def test_fixture_on_virtual_time_too(server_started_at):
    assert server_started_at == 5.0

def test_real_time_again():
    loop = __import__("tidal.testing").testing.new_event_loop()
    assert loop.clock is None
    loop.close()
'''


def test_tidal_clock_fixture(pytester: pytest.Pytester) -> None:
    result = run(pytester, CLOCK, "-p", "no:asyncio")
    result.assert_outcomes(passed=4)


FAILING = '''
import asyncio, pytest

async def helper(n):
    await asyncio.sleep(1)
    raise ValueError(f"bad value {n}")

@pytest.mark.tidal
async def test_fails():
    value = 41
    await helper(value)
'''


def test_failure_traceback_shows_the_users_lines(pytester: pytest.Pytester) -> None:
    result = run(pytester, FAILING)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*async def test_fails():*",
        ">*await helper(value)*",
        "*raise ValueError(f\"bad value {n}\")*",
        "E*ValueError: bad value 41",
    ])
    out = result.stdout.str()
    assert "tidal/_core" not in out and "pytest_plugin.py" not in out


ORDER = '''
import asyncio, pytest

async def order_dependent():
    log = []
    async def worker(name):
        await asyncio.sleep(1)
        log.append(name)
    await asyncio.gather(*(worker(i) for i in range(8)))
    assert log == sorted(log), log

@pytest.mark.tidal
async def test_relies_on_fifo(tidal_clock):
    # On virtual time the same seed replays the same interleaving exactly.
    await order_dependent()
'''


def test_shuffle_finds_order_dependence_and_prints_the_seed(pytester: pytest.Pytester) -> None:
    assert run(pytester, ORDER).ret == 0  # FIFO by default: passes
    result = pytester.runpytest(*FLAGS, "--tidal-shuffle=7")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "tidal: ready-order shuffle seed 7*",
        "*- tidal -*",
        "ready order shuffled with seed * replay with --tidal-shuffle=7, or "
        "@pytest.mark.tidal(shuffle=*)",
    ])
    first = [line for line in result.stdout.lines if line.startswith("E ")]
    again = pytester.runpytest(*FLAGS, "--tidal-shuffle=7")
    assert [line for line in again.stdout.lines if line.startswith("E ")] == first
    seed = next(
        line.split("seed ")[1].split(";")[0]
        for line in result.stdout.lines if line.startswith("ready order shuffled")
    )
    pinned = ORDER.replace("@pytest.mark.tidal\n", f"@pytest.mark.tidal(shuffle={seed})\n")
    assert pinned != ORDER
    replay = run(pytester, pinned)
    assert [line for line in replay.stdout.lines if line.startswith("E ")] == first


def test_random_shuffle_seed_is_in_the_header(pytester: pytest.Pytester) -> None:
    result = run(pytester, "async def test_nothing(): pass\n", "--tidal",
                 "--tidal-shuffle=random")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["tidal: *ready-order shuffle seed * (--tidal-shuffle=*)"])
    assert run(pytester, "", "--tidal-shuffle=x").ret == pytest.ExitCode.USAGE_ERROR


# -- beside pytest-asyncio ----------------------------------------------------------------

ASYNCIO_CONFTEST = '''
import tidal.testing

def pytest_asyncio_loop_factories(config, item):
    return {"tidal": tidal.testing.new_event_loop}
'''

ASYNCIO_TESTS = '''
import asyncio, pytest, pytest_asyncio, tidal.testing

@pytest_asyncio.fixture
async def value():
    await asyncio.sleep(0)
    return asyncio.get_running_loop()

@pytest.mark.asyncio
async def test_on_tidal(value):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, tidal.testing.EventLoop) and value is loop

@pytest.mark.asyncio
async def test_clock(tidal_clock):
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(1000), 30)
    assert loop.time() == start + 30 and loop.clock is tidal_clock
'''


def test_pytest_asyncio_with_tidal_as_its_loop_factory(pytester: pytest.Pytester) -> None:
    result = run(pytester, ASYNCIO_TESTS, conftest=ASYNCIO_CONFTEST)
    result.assert_outcomes(passed=2)


def test_pytest_asyncio_both_loops_and_one_per_test(pytester: pytest.Pytester) -> None:
    conftest = """
import asyncio, tidal.testing

def pytest_asyncio_loop_factories(config, item):
    return {"asyncio": asyncio.new_event_loop, "tidal": tidal.testing.new_event_loop}
"""
    source = """
import asyncio, pytest, tidal.testing

@pytest.mark.asyncio
async def test_each(request):
    on_tidal = isinstance(asyncio.get_running_loop(), tidal.testing.EventLoop)
    assert on_tidal == request.node.name.endswith("[tidal]")

@pytest.mark.asyncio(loop_factories=["tidal"])
async def test_on_tidal_only(tidal_clock):
    await asyncio.sleep(3600)
    assert asyncio.get_running_loop().time() == 3600
"""
    result = run(pytester, source, "-v", conftest=conftest)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_each?asyncio? PASSED*", "*test_each?tidal? PASSED*"])


def test_pytest_asyncio_auto_mode_with_tidal_option(pytester: pytest.Pytester) -> None:
    source = ASYNCIO_TESTS.replace("@pytest.mark.asyncio\n", "")
    result = run(pytester, source, "--tidal", ini="asyncio_mode = auto")
    result.assert_outcomes(passed=2)


def test_pytest_asyncio_strict_mode_beside_tidal_marked_tests(pytester: pytest.Pytester) -> None:
    source = '''
import asyncio, pytest, tidal, tidal.testing

@pytest.mark.asyncio
async def test_asyncio_loop():
    assert not isinstance(asyncio.get_running_loop(), tidal.EventLoop)

@pytest.mark.tidal
async def test_tidal_loop(tidal_clock):
    assert isinstance(asyncio.get_running_loop(), tidal.testing.EventLoop)
    await asyncio.sleep(86400)
'''
    result = run(pytester, source)
    result.assert_outcomes(passed=2)


def test_tidal_clock_on_pytest_asyncios_own_loop_fails_clearly(pytester: pytest.Pytester) -> None:
    source = '''
import asyncio, pytest

@pytest.mark.asyncio
async def test_clock(tidal_clock):
    await asyncio.sleep(3600)
'''
    result = run(pytester, source)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tidal.testing.new_event_loop (see docs/testing.md)*"])


# -- beside anyio's plugin ----------------------------------------------------------------

ANYIO = '''
import asyncio, time, pytest, anyio, tidal, tidal.testing

@pytest.fixture
def anyio_backend():
    return ("asyncio", {{"loop_factory": {factory}}})

@pytest.fixture
async def resource():
    async with anyio.create_task_group():
        yield asyncio.get_running_loop()

@pytest.mark.anyio
async def test_on_tidal(resource):
    assert isinstance(asyncio.get_running_loop(), tidal.EventLoop)
    assert resource is asyncio.get_running_loop()
    await anyio.sleep(0)
'''

ANYIO_CLOCK = '''
@pytest.mark.anyio
async def test_clock(tidal_clock):
    loop = asyncio.get_running_loop()
    wall = time.perf_counter()
    start = loop.time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(600):
            await anyio.sleep(3600)
    assert loop.time() == start + 600
    assert time.perf_counter() - wall < 1
'''


def test_anyio_with_tidal_loop_factory(pytester: pytest.Pytester) -> None:
    result = run(pytester, ANYIO.format(factory="tidal.new_event_loop"), "-p", "no:asyncio")
    result.assert_outcomes(passed=1)


def test_anyio_with_tidal_testing_loop_and_clock(pytester: pytest.Pytester) -> None:
    source = ANYIO.format(factory="tidal.testing.new_event_loop") + ANYIO_CLOCK
    result = run(pytester, source, "-p", "no:asyncio")
    result.assert_outcomes(passed=2)
    # And beside pytest-asyncio in the same run.
    result = pytester.runpytest(*FLAGS)
    result.assert_outcomes(passed=2)


# -- assertion rewriting -------------------------------------------------------------------


def test_modules_with_asserts_are_not_rewritten() -> None:
    # The pytest11 entry point makes pytest rewrite every module of the
    # installed distribution; tidal's own asserts mirror asyncio's and must
    # fail with asyncio's (bare) messages in the user's test suite as well.
    import ast
    from pathlib import Path

    import tidal

    root = Path(tidal.__file__).parent
    missing = []
    for path in sorted(root.rglob("*.py")):
        if "bench" in path.relative_to(root).parts:
            continue  # the benchmark's own checks, never run under a user's pytest
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
            if "PYTEST_DONT_REWRITE" not in (ast.get_docstring(tree) or ""):
                missing.append(str(path.relative_to(root)))
    assert missing == []

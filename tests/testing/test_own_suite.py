"""tidal's own suite: a leak's report fails the test that leaked, not a later one.

``tests/conftest.py`` collects garbage after each test and freezes what is
left (docs/testing.md, "tidal's own suite on the virtual clock"); this runs
that conftest in a fresh pytest over tests that leak.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent.parent

LEAKS = '''
import pytest


class Boom:
    def __del__(self):
        raise RuntimeError("finalizer of a cycle")


def test_a_cycle_without_the_loop_fixture():
    b = Boom()
    b.me = b


def test_b_innocent():
    pass


def test_c_unretrieved_exception_in_a_cycle(loop):
    fut = loop.create_future()
    fut.set_exception(ValueError("never retrieved"))
    cycle = [fut]
    cycle.append(cycle)


def test_d_innocent():
    pass
'''

MODULE_FIXTURE = '''
import pytest
from test_leaks import Boom


@pytest.fixture(scope="module")
def holder():
    kept = {}
    yield kept
    kept.clear()


def test_e_keeps_a_cycle_alive_past_its_end(holder):
    b = Boom()
    b.me = b
    holder["b"] = b


def test_f_last_of_the_module(holder):
    pass
'''


def test_a_leak_is_reported_in_the_test_that_leaked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(loop_support=(TESTS / "loop_support.py").read_text(),
                        test_leaks=LEAKS, test_module_fixture=MODULE_FIXTURE)
    pytester.makeini(
        "[pytest]\naddopts = -p no:cacheprovider\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error::pytest.PytestUnraisableExceptionWarning\n"
    )
    result = pytester.runpytest("-rA", "-p", "no:randomly", "--junitxml=out.xml",
                               "-o", "junit_logging=log")
    errors = [line for line in result.outlines if line.startswith("ERROR test_")]
    assert [e.split(" - ")[0] for e in errors] == [
        "ERROR test_leaks.py::test_a_cycle_without_the_loop_fixture",
        # kept alive by the module's fixture: reported once the module ends
        "ERROR test_module_fixture.py::test_f_last_of_the_module",
    ], result.stdout.str()
    result.assert_outcomes(passed=7, errors=2)
    # The future's report is logged in its own test (its teardown), on both loops.
    logged = [
        case.get("name")
        for case in ET.parse(pytester.path / "out.xml").iter("testcase")
        if "Future exception was never retrieved" in ET.tostring(case, encoding="unicode")
    ]
    assert logged == ["test_c_unretrieved_exception_in_a_cycle[tidal]",
                      "test_c_unretrieved_exception_in_a_cycle[asyncio]"]

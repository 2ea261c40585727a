"""pytest plugin that runs anyio's own test suite on tidal's loop, or on asyncio's.

Loaded with ``-p anyio_suite_plugin`` into a pytest run of anyio's sdist
tests (see ``test_anyio_suite.py``).  ``TIDAL_ANYIO_LOOP`` chooses the loop:

* ``asyncio`` (the oracle): anyio's tests as anyio runs them, for the plain
  asyncio backend only;
* ``tidal``: the same tests with ``loop_factory=tidal.new_event_loop`` in the
  ``anyio_backend`` options, and the same default for every ``anyio.run()``
  or blocking portal on the asyncio backend that names no loop of its own
  (anyio's tests start many in threads).

Either way, tests parametrized for another backend or loop (trio, uvloop,
asyncio with the eager task factory) are deselected, so both runs hold the
same test ids and their outcomes can be compared one by one; so are the
``ipv6`` variants on a machine without an IPv6 localhost, and the two
modules that never run on the loop under test (``NOT_ON_THE_LOOP``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

LOOP = os.environ.get("TIDAL_ANYIO_LOOP", "asyncio")

# Modules whose tests run their code in child interpreters that never use
# the loop under test (pytester runs of anyio's pytest plugin, lazy imports
# in fresh interpreters): 50 of the suite's 80 s, the same on either loop.
NOT_ON_THE_LOOP = {"test_pytest_plugin.py", "test_lazyimport.py"}


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    return True if collection_path.name in NOT_ON_THE_LOOP else None


def _plain_asyncio(backend: object) -> bool:
    """True for anyio's asyncio backend on the default loop (no factory, no uvloop)."""
    if backend == "asyncio":
        return True
    if isinstance(backend, tuple) and len(backend) == 2 and backend[0] == "asyncio":
        options = backend[1]
        return (isinstance(options, dict) and options.get("loop_factory") is None
                and not options.get("use_uvloop"))
    return False


_tidal_loops = 0


def new_tidal_loop() -> Any:
    """``tidal.new_event_loop()``, counted: the report proves the loops were tidal's."""
    global _tidal_loops
    import tidal

    loop = tidal.new_event_loop()
    _tidal_loops += 1
    return loop


def _on_tidal(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("loop_factory") is None and not options.get("use_uvloop"):
        return {**options, "loop_factory": new_tidal_loop}
    return options


def _ipv6_loopback() -> bool:
    """True if ::1 works and 'localhost' has an IPv6 address, as anyio's ipv6 tests need."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        socket.getaddrinfo("localhost", 0, socket.AF_INET6)
    except OSError:
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    if LOOP != "tidal":
        return
    from anyio._backends._asyncio import AsyncIOBackend

    run = AsyncIOBackend.run.__func__  # type: ignore[attr-defined]

    def run_on_tidal(cls: type, func: Any, args: Any, kwargs: Any, options: Any) -> Any:
        return run(cls, func, args, kwargs, _on_tidal(options))

    AsyncIOBackend.run = classmethod(run_on_tidal)  # type: ignore[method-assign,assignment]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep the plain-asyncio tests (and the backend-less ones); point them at the loop.

    Trylast: anyio's own hook of this name adds the items of ``anyio``-marked
    tests first.  Rewriting ``callspec.params`` changes the value the
    ``anyio_backend`` fixture (or direct parametrization) hands out, not the
    test id, so both runs name their tests alike.
    """
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    ipv6 = _ipv6_loopback()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if not ipv6 and callspec is not None and "ipv6" in callspec.id.split("-"):
            # No IPv6 localhost here: those tests fail on any loop, and the
            # sockets they drop warn (unraisable) in whichever test the
            # collector happens to run.
            drop.append(item)
            continue
        if callspec is None or "anyio_backend" not in callspec.params:
            keep.append(item)
            continue
        backend = callspec.params["anyio_backend"]
        if not _plain_asyncio(backend):
            drop.append(item)
            continue
        if LOOP == "tidal":
            name, options = (backend, {}) if isinstance(backend, str) else backend
            callspec.params["anyio_backend"] = (name, _on_tidal(options))
        keep.append(item)
    if drop:
        session.config.hook.pytest_deselected(items=drop)
        session.items[:] = keep


@pytest.fixture(autouse=True)
def _tidal_may_block_like_asyncio(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let tidal's subprocess_exec/shell block where asyncio's may.

    anyio's tests run under blockbuster, whose rules allow ``os.read`` (the
    ``subprocess.Popen`` start-up handshake) in asyncio's
    ``base_events.py`` ``subprocess_exec``/``subprocess_shell`` by file
    name.  tidal's loop makes the same blocking call from its own methods of
    those names.
    """
    if LOOP == "tidal" and "blockbuster" in request.fixturenames:
        bb = request.getfixturevalue("blockbuster")
        if bb is not None:
            bb.functions["os.read"].can_block_in(
                "tidal/_io/subprocess.py", {"subprocess_exec", "subprocess_shell"})
    yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = os.environ.get("TIDAL_ANYIO_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump({"loop": LOOP, "tidal_loops": _tidal_loops}, f)


def pytest_report_header(config: pytest.Config) -> str:
    return f"anyio suite on the {LOOP} loop"

"""The loop's default executor: set_default_executor, shutdown_default_executor.

Run on tidal and on asyncio.  shutdown_default_executor(timeout=) changed
with the version: 3.11 has no timeout; 3.12 applies it to the final join of
the thread that shuts the pool down, after the pool is done; 3.13 applies it
to the wait for the pool, warns and returns while the pool still runs.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import warnings
from typing import Any

import pytest

# Waiting for the loop: generous, only reached when something is wrong.
LONG = 5.0



class BlockingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A pool whose shutdown(wait=True) blocks until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.release = threading.Event()
        self.finished = threading.Event()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            self.release.wait(LONG)
            self.finished.set()
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


def test_set_default_executor_rejects_other_executors(loop: Any) -> None:
    # The same message on 3.11-3.13.
    with pytest.raises(TypeError, match=r"\Aexecutor must be ThreadPoolExecutor instance\Z"):
        loop.set_default_executor(object())
    assert loop._default_executor is None


def test_set_default_executor_accepts_a_thread_pool_subclass(loop: Any) -> None:
    executor = BlockingExecutor()
    executor.release.set()
    loop.set_default_executor(executor)
    assert loop.run_until_complete(loop.run_in_executor(None, sum, [1, 2])) == 3
    loop.run_until_complete(loop.shutdown_default_executor())
    assert executor.finished.is_set()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11 has no timeout parameter")
def test_shutdown_default_executor_has_no_timeout_on_311(loop: Any) -> None:
    with pytest.raises(TypeError, match=r"\A[\w.]*shutdown_default_executor\(\) got an "
                       r"unexpected keyword argument 'timeout'\Z"):
        loop.shutdown_default_executor(timeout=1).close()


def _errors_logged(loop: Any) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    return errors


@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.13: the timeout bounds the wait")
def test_shutdown_default_executor_timeout_returns_and_warns(aio: Any, loop: Any) -> None:
    executor = BlockingExecutor()
    loop.set_default_executor(executor)
    errors = _errors_logged(loop)
    loop.run_until_complete(loop.run_in_executor(None, int))
    before = set(threading.enumerate())
    # If the timeout were ignored, this release ends the wait (and the test fails).
    loop.call_later(LONG, executor.release.set)
    with pytest.warns(RuntimeWarning) as record:
        loop.run_until_complete(loop.shutdown_default_executor(timeout=0.01))
    # Returned while the pool was still shutting down.
    assert not executor.release.is_set() and not executor.finished.is_set()
    assert [str(w.message) for w in record] == [
        "The executor did not finishing joining its threads within 0.01 seconds."
    ]
    executor.release.set()
    assert executor.finished.wait(LONG)
    for thread in set(threading.enumerate()) - before:  # the shutdown thread
        thread.join(LONG)
    # Its late result lands on the future the timeout cancelled: nothing logged.
    for _ in range(3):
        loop.run_until_complete(aio.sleep(0))
    assert errors == []


@pytest.mark.skipif(sys.version_info < (3, 12) or sys.version_info >= (3, 13),
                    reason="3.12: the timeout bounds the final join only")
def test_shutdown_default_executor_timeout_waits_for_the_pool_on_312(loop: Any) -> None:
    executor = BlockingExecutor()
    loop.set_default_executor(executor)
    loop.run_until_complete(loop.run_in_executor(None, int))
    # The loop keeps running while the pool shuts down; the release comes from it.
    loop.call_later(0.05, executor.release.set)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        loop.run_until_complete(loop.shutdown_default_executor(timeout=0.01))
    assert executor.finished.is_set()


def test_shutdown_default_executor_without_timeout_waits(loop: Any) -> None:
    executor = BlockingExecutor()
    loop.set_default_executor(executor)
    loop.run_until_complete(loop.run_in_executor(None, int))
    loop.call_later(0.02, executor.release.set)
    loop.run_until_complete(loop.shutdown_default_executor())
    assert executor.finished.is_set()
    with pytest.raises(RuntimeError, match=r"\AExecutor shutdown has been called\Z"):
        loop.run_in_executor(None, int)


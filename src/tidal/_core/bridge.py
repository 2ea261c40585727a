"""Bridges between loop futures and ``concurrent.futures`` (threads, executors)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import warnings
from typing import Any

from tidal._core.futures import isfuture

__all__ = ("wrap_future", "chain_future")


def _get_loop(fut: Any) -> Any:
    try:
        return fut.get_loop()
    except AttributeError:
        return fut._loop


def convert_future_exc(exc: BaseException) -> BaseException:
    """Turn concurrent.futures' own exception classes into asyncio's."""
    cls = type(exc)
    if cls is concurrent.futures.CancelledError:
        return asyncio.CancelledError(*exc.args)
    if cls is concurrent.futures.TimeoutError:
        return TimeoutError(*exc.args)
    if cls is concurrent.futures.InvalidStateError:
        return asyncio.InvalidStateError(*exc.args)
    return exc


def _copy_to_concurrent(dest: concurrent.futures.Future[Any], source: Any) -> None:
    if source.cancelled():
        dest.cancel()
    if not dest.set_running_or_notify_cancel():
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(convert_future_exc(exc))
    else:
        dest.set_result(source.result())


def copy_future_state(source: Any, dest: Any) -> None:
    """Copy a done *source*'s outcome into the pending loop future *dest*."""
    if dest.cancelled():
        return
    if source.cancelled():
        dest.cancel()
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(convert_future_exc(exc))
    else:
        dest.set_result(source.result())


def chain_future(source: Any, destination: Any) -> None:
    """Complete *destination* like *source*; cancelling *destination* cancels *source*.

    Either may be a loop future or a ``concurrent.futures.Future``; crossing
    threads goes through ``call_soon_threadsafe``.
    """
    if not isfuture(source) and not isinstance(source, concurrent.futures.Future):
        raise TypeError("A future is required for source argument")
    if not isfuture(destination) and not isinstance(destination, concurrent.futures.Future):
        raise TypeError("A future is required for destination argument")
    source_loop = _get_loop(source) if isfuture(source) else None
    dest_loop = _get_loop(destination) if isfuture(destination) else None

    def set_state(future: Any, other: Any) -> None:
        if isfuture(future):
            copy_future_state(other, future)
        else:
            _copy_to_concurrent(future, other)

    def on_destination_done(dest: Any) -> None:
        if dest.cancelled():
            if source_loop is None or source_loop is dest_loop:
                source.cancel()
            else:
                source_loop.call_soon_threadsafe(source.cancel)

    def on_source_done(src: Any) -> None:
        if destination.cancelled() and dest_loop is not None and dest_loop.is_closed():
            return
        if dest_loop is None or dest_loop is source_loop:
            set_state(destination, src)
        elif not dest_loop.is_closed():
            dest_loop.call_soon_threadsafe(set_state, destination, src)

    destination.add_done_callback(on_destination_done)
    source.add_done_callback(on_source_done)


def wrap_future(future: Any, *, loop: Any = None) -> Any:
    """A loop future that mirrors a ``concurrent.futures.Future``."""
    if isfuture(future):
        return future
    # asyncio's assert, spelled so that pytest (tidal is a pytest plugin's
    # distribution, so pytest rewrites its asserts) cannot change the message.
    if __debug__ and not isinstance(future, concurrent.futures.Future):
        raise AssertionError(f"concurrent.futures.Future is expected, got {future!r}")
    if loop is None:
        from tidal._core.events import get_event_loop

        loop = get_event_loop()
    new_future = loop.create_future()
    chain_future(future, new_future)
    return new_future


def _set_result_unless_cancelled(future: Any) -> None:
    if not future.cancelled():
        future.set_result(None)


async def shutdown_executor(loop: Any, timeout: float | None) -> None:
    """``loop.shutdown_default_executor()``: join the pool's threads off the loop.

    Up to 3.12, *timeout* bounds the final join of the joining thread, which
    blocks the loop; from 3.13 it bounds the wait for the pool, and the loop
    runs meanwhile (as asyncio's do).
    """
    loop._executor_shutdown_called = True
    executor = loop._default_executor
    if executor is None:
        return
    future = loop.create_future()
    new_style = sys.version_info >= (3, 13)

    def join() -> None:
        try:
            executor.shutdown(wait=True)
            if not loop.is_closed():
                if new_style:  # the timeout may have cancelled the future
                    loop.call_soon_threadsafe(_set_result_unless_cancelled, future)
                else:
                    loop.call_soon_threadsafe(future.set_result, None)
        except Exception as ex:
            if not loop.is_closed() and not (new_style and future.cancelled()):
                loop.call_soon_threadsafe(future.set_exception, ex)

    thread = threading.Thread(target=join)
    thread.start()
    message = f"The executor did not finishing joining its threads within {timeout} seconds."
    if new_style:
        from tidal._api.timeouts import timeout as timeout_cm

        try:
            async with timeout_cm(timeout):
                await future
        except TimeoutError:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            executor.shutdown(wait=False)
        else:
            thread.join()
        return
    try:
        await future
    finally:
        thread.join(timeout)
    if thread.is_alive():
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        executor.shutdown(wait=False)

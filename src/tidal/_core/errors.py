"""The loop's error reporting: how an exception that nobody awaited is logged.

Nothing may vanish silently: an exception in a callback, a task whose
exception was never retrieved, a task destroyed while pending all end up here
and are logged to the ``asyncio`` logger, so existing logging setups apply.
"""

from __future__ import annotations

import logging
import sys
import traceback
from asyncio import base_events as _aio_base_events
from typing import Any


def asyncio_logger() -> logging.Logger:
    """The logger asyncio's own loop reports through (the "asyncio" logger).

    Read at each report, not bound once: code that swaps
    ``asyncio.base_events.logger`` (CPython's tests mock it) must see
    tidal's reports as it would asyncio's.
    """
    return _aio_base_events.logger  # type: ignore[attr-defined, no-any-return]

_HANDLER_IN_CONTEXT = sys.version_info >= (3, 12)


def log_context(loop: Any, context: dict[str, Any]) -> None:
    """Log an error context the way asyncio's default handler does."""
    message = context.get("message") or "Unhandled exception in event loop"
    exception = context.get("exception")
    exc_info: Any = (
        (type(exception), exception, exception.__traceback__) if exception is not None else False
    )
    handle = getattr(loop, "_current_handle", None)
    if (
        "source_traceback" not in context
        and handle is not None
        and getattr(handle, "_source_traceback", None)
    ):
        context["handle_traceback"] = handle._source_traceback
    lines = [message]
    for key in sorted(context):
        if key in ("message", "exception"):
            continue
        value = context[key]
        if key == "source_traceback":
            tb = "".join(traceback.format_list(value))
            text = "Object created at (most recent call last):\n" + tb.rstrip()
        elif key == "handle_traceback":
            tb = "".join(traceback.format_list(value))
            text = "Handle created at (most recent call last):\n" + tb.rstrip()
        else:
            text = repr(value)
        lines.append(f"{key}: {text}")
    asyncio_logger().error("\n".join(lines), exc_info=exc_info)


def call_handler(loop: Any, context: dict[str, Any]) -> None:
    """Run the loop's exception handler, falling back to logging if it fails."""
    handler = loop._exception_handler
    if handler is None:
        try:
            loop.default_exception_handler(context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            # The handler itself failed: this must still reach someone.
            asyncio_logger().error("Exception in default exception handler", exc_info=True)
        return
    try:
        # 3.12+ runs the handler in the context of the task or handle at fault.
        ctx = None
        if _HANDLER_IN_CONTEXT:
            thing = context.get("task")
            if thing is None:
                thing = context.get("future")
            if thing is None:
                thing = context.get("handle")
            if thing is not None and hasattr(thing, "get_context"):
                ctx = thing.get_context()
        if ctx is not None and hasattr(ctx, "run"):
            ctx.run(handler, loop, context)
        else:
            handler(loop, context)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        try:
            loop.default_exception_handler({
                "message": "Unhandled error in exception handler",
                "exception": exc,
                "context": context,
            })
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            asyncio_logger().error(
                "Exception in default exception handler while handling an unexpected "
                "error in custom exception handler",
                exc_info=True,
            )

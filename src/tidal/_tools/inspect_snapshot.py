"""What a tidal program answers to ``python -m tidal ps``: its tasks, as JSON.

Called by the inspection signal's handler (``inspect_agent``) in the main
thread, between two bytecodes of whatever the program was doing: it reads
task state (under the GIL, which is enough for a consistent-enough
picture), takes no lock the interrupted code could hold, runs no user code
but ``get_name()``, and writes its answer with ``O_EXCL | O_NOFOLLOW`` into
a directory that only this user can write.

The snapshot (schema 1)::

    {"schema": 1, "pid": ..., "python": "3.12.1", "argv": [...],
     "loops": [{"id", "class", "tid", "running"}],
     "tasks": [{"id", "name", "loop", "tid", "current",
                "stack": [[qualname, filename, lineno], ...],  # innermost first
                "awaited_by": [task id, ...]}]}

A task's awaiters are derived as ``capture_call_graph()`` derives them
(``graph.awaited_by``), with intermediate futures replaced by the tasks
awaiting them.  The task running when the signal came (a loop blocked in
``time.sleep()``, say) gets its live stack, sync frames included.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from types import FrameType
from typing import Any

from tidal._core import _aio
from tidal._tools import graph
from tidal._tools.inspect_agent import request_dir

__all__ = ("SCHEMA", "answer", "snapshot")

SCHEMA = 1
_REQUEST_ID = re.compile(r"[0-9a-f]{1,64}")


def answer(frame: FrameType | None) -> int:
    """Answer every pending request for this process; returns how many."""
    uid = os.geteuid()
    path = request_dir(uid)
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        st = os.fstat(dfd)
        if st.st_uid != uid or st.st_mode & 0o077:
            return 0  # not our private directory: write nothing there
        prefix, suffix = f"{os.getpid()}.", ".request"
        ids = [
            name[len(prefix):-len(suffix)]
            for name in os.listdir(dfd)
            if name.startswith(prefix) and name.endswith(suffix)
        ]
        ids = [rid for rid in ids if _REQUEST_ID.fullmatch(rid)]
        if not ids:
            return 0
        try:
            data = json.dumps(snapshot(frame)).encode()
        except Exception as exc:  # report it instead of staying silent
            data = json.dumps({"schema": SCHEMA, "error": f"{type(exc).__name__}: {exc}"}).encode()
        for rid in ids:
            _write(dfd, f"{prefix}{rid}", data)
        return len(ids)
    finally:
        os.close(dfd)


def _write(dfd: int, stem: str, data: bytes) -> None:
    tmp = f"{stem}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
    except FileExistsError:  # a leftover of an interrupted answer
        os.unlink(tmp, dir_fd=dfd)
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    # The rename makes the answer appear whole; the request goes last, so an
    # inspector never sees neither.
    os.replace(tmp, f"{stem}.json", src_dir_fd=dfd, dst_dir_fd=dfd)
    try:
        os.unlink(f"{stem}.request", dir_fd=dfd)
    except FileNotFoundError:
        pass


def snapshot(frame: FrameType | None = None) -> dict[str, Any]:
    """The tasks of every loop in this process.

    *frame* is where this thread is (the frame a signal interrupted);
    default: the caller's.
    """
    # threading._active read directly: enumerate() takes a lock that the
    # interrupted main thread may be holding.
    active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
    native = {ident: t.native_id for ident, t in dict(active).items()}
    frames: dict[int, FrameType] = dict(sys._current_frames())
    frames[threading.get_ident()] = frame if frame is not None else sys._getframe(1)
    loops: dict[int, dict[str, Any]] = {}
    tasks = [t for t in _aio.snapshot_tasks() if not _done(t)]
    entries: list[dict[str, Any]] = []
    for task in tasks:
        loop = _loop_of(task)
        info = loops.get(id(loop))
        if info is None:
            ident = getattr(loop, "_thread_id", None)
            info = loops[id(loop)] = {
                "id": id(loop),
                "class": f"{type(loop).__module__}.{type(loop).__qualname__}",
                "tid": (native.get(ident) or 0) if ident is not None else 0,
                "running": ident is not None,
                "ident": ident,
            }
        current = _aio.current_tasks.get(loop) is task
        try:
            stack = _task_stack(task, frames.get(info["ident"]) if current else None)
            awaiters = _task_awaiters(task)
            name = str(task.get_name())
        except Exception as exc:  # one odd task must not spoil the rest
            stack, awaiters, name = [], [], f"<{type(exc).__name__}: {exc}>"
        entries.append({
            "id": id(task),
            "name": name,
            "loop": id(loop),
            "tid": info["tid"],
            "current": current,
            "stack": stack,
            "awaited_by": awaiters,
        })
    for info in loops.values():
        del info["ident"]
    return {
        "schema": SCHEMA,
        "pid": os.getpid(),
        "python": ".".join(map(str, sys.version_info[:3])),
        "argv": list(sys.argv),
        "loops": list(loops.values()),
        "tasks": entries,
    }


def _done(task: Any) -> bool:
    try:
        return bool(task.done())
    except Exception:
        return True


def _loop_of(task: Any) -> Any:
    try:
        return task.get_loop()
    except Exception:
        return getattr(task, "_loop", None)


def _task_stack(task: Any, live: FrameType | None) -> list[list[Any]]:
    # Innermost first.  The running task: its live frames from where the
    # thread is now down to the task's outermost coroutine.
    if live is not None:
        found = [entry.frame for entry in graph._current_stack(live, None)]
    else:
        found = graph.coroutine_frames(task.get_coro())
        found.reverse()
    return [[f.f_code.co_qualname, f.f_code.co_filename, f.f_lineno] for f in found]


def _task_awaiters(task: Any) -> list[int]:
    # Tasks only: a registered future stands for the tasks awaiting it.
    found: list[int] = []
    seen: set[int] = {id(task)}
    pending = list(graph.awaited_by(task))
    while pending:
        waiter = pending.pop(0)
        if id(waiter) in seen:
            continue
        seen.add(id(waiter))
        if isinstance(waiter, graph._AIO_TASK):
            found.append(id(waiter))
        else:
            pending.extend(graph.awaited_by(waiter))
    return found

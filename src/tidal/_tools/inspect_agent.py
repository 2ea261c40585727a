"""The part of ``python -m tidal ps``/``pstree`` that lives in every tidal program.

``import tidal`` (in the main thread, on Linux) installs a Python handler for
one real-time signal, ``SIGRTMIN + 7``, if that signal still has its default
disposition: a program's own handler is never replaced.  Nothing else runs:
no thread, no socket, no file, no work per task.  ``TIDAL_INSPECT=0`` in the
environment leaves the signal alone.

When the inspector (``tidal._tools.inspect_cli``, run by the same user or
root: ``kill()`` itself enforces that) sends the signal, Python runs the
handler in the main thread between two bytecodes, wherever the program is.
The handler looks for request files named ``<pid>.<id>.request`` in the
user's private directory (see :func:`request_dir`) and, for each, writes a
JSON snapshot of the tasks and their awaited-by links (built by
``inspect_snapshot``, imported only then) to ``<pid>.<id>.json``.  The
target reads nothing from the request but its name, in a directory that
only its own user can write.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
from typing import Any

__all__ = ("OFFSET", "inspect_signal", "install", "installed", "request_dir")

#: The signal is ``SIGRTMIN + OFFSET``: real-time signals are unused by
#: Python and by most programs, and are never sent by the kernel on its own.
OFFSET = 7

_state = {"installed": False}


def inspect_signal() -> int | None:
    """The inspection signal's number, or None where there are no real-time signals."""
    base = getattr(signal, "SIGRTMIN", None)
    if base is None or not sys.platform.startswith("linux"):
        return None
    return int(base) + OFFSET


def request_dir(uid: int) -> str:
    """Where requests and snapshots for processes of user *uid* go.

    A function of the uid alone, so that the inspector and the program agree
    whatever their environments: ``/run/user/<uid>/tidal`` when the user has
    a runtime directory (systemd), else ``/tmp/tidal-<uid>``.
    """
    runtime = f"/run/user/{uid}"
    try:
        st = os.stat(runtime)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
        return os.path.join(runtime, "tidal")
    return f"/tmp/tidal-{uid}"


def installed() -> bool:
    """True if this process answers ``python -m tidal ps``."""
    sig = inspect_signal()
    return bool(_state["installed"]) and sig is not None and signal.getsignal(sig) is _on_signal


def install() -> bool:
    """Install the handler, if allowed and the signal is free; True if installed."""
    if _state["installed"]:
        return True
    if os.environ.get("TIDAL_INSPECT", "").strip().lower() in ("0", "no", "off", "false"):
        return False
    sig = inspect_signal()
    if sig is None or threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(sig) != signal.SIG_DFL:
            return False  # the program's (or None: set outside Python): not ours to take
        signal.signal(sig, _on_signal)
    except (OSError, ValueError):
        return False
    _state["installed"] = True
    return True


def _on_signal(signum: int, frame: Any) -> None:
    # Runs in the main thread at an arbitrary point of the program: nothing
    # may escape, and the work is done by a module imported only now.
    try:
        from tidal._tools.inspect_snapshot import answer

        answer(frame)
    except Exception:  # an inspection must never break the program
        pass
    finally:
        del frame

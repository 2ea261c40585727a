"""``python -m tidal ps PID`` and ``pstree PID``: the tasks of a running tidal program.

The output is Python 3.14's ``python -m asyncio ps``/``pstree``: a table of
tasks (thread, id, name, coroutine stack, awaiter chain, awaiter name and
id), or the await tree, with await cycles reported as 3.14 reports them.
How the snapshot is obtained (a signal, a request file, an answer file; no
thread, no port) is described in ``inspect_agent``; this module is the
inspector's side: checks, request, bounded wait, rendering.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import os
import secrets
import select
import signal
import stat
import sys
import time
from collections import defaultdict
from typing import Any

from tidal._tools.inspect_agent import OFFSET, inspect_signal, request_dir

__all__ = (
    "InspectError", "add_commands", "build_table", "build_tree", "find_cycles",
    "request_snapshot", "run",
)

DEFAULT_TIMEOUT = 5.0


class InspectError(Exception):
    """The process cannot be inspected; the message says why."""


# -- asking the process -----------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as file:
            text = file.read()
    except FileNotFoundError:
        raise InspectError(f"no process with PID {pid}") from None
    except PermissionError:
        raise InspectError(f"permission denied: cannot read /proc/{pid}/status") from None
    fields: dict[str, str] = {}
    for row in text.splitlines():
        key, _, value = row.partition(":")
        fields[key] = value.strip()
    return fields


def _check_target(pid: int, sig: int) -> int:
    """The target's effective uid, once it is known to answer; else InspectError."""
    if pid <= 0:
        raise InspectError(f"no process with PID {pid}")
    fields = _status(pid)
    name = fields.get("Name", "?")
    if fields.get("State", "").startswith(("Z", "X")):
        raise InspectError(f"process {pid} ({name}) has exited")
    caught = int(fields.get("SigCgt", "0"), 16)
    if not caught >> (sig - 1) & 1:
        raise InspectError(
            f"process {pid} ({name}) is not a tidal program: it does not handle tidal's "
            f"inspection signal (SIGRTMIN+{OFFSET}); tidal may not be imported, it may have "
            "been started with TIDAL_INSPECT=0, or the program uses that signal itself"
        )
    uids = [int(u) for u in fields.get("Uid", "0 0 0 0").split()]
    me = os.geteuid()
    if me != 0 and me not in (uids[0], uids[2]) and os.getuid() not in (uids[0], uids[2]):
        raise InspectError(
            f"permission denied: process {pid} ({name}) belongs to another user "
            f"(uid {uids[0]}); only its user or root may inspect it"
        )
    return uids[1]


def _private_dir(uid: int) -> str:
    # The directory the target answers in: made 0700 (and given to the
    # target's user if root makes it); refused if anyone else could write it.
    path = request_dir(uid)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InspectError(f"cannot create {path}: {exc.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode) and st.st_uid != uid and st.st_uid == os.geteuid() == 0:
        os.chown(path, uid, -1)
        st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise InspectError(
            f"refusing to use {path}: it must be a directory owned by uid {uid} "
            "with no access for group or others"
        )
    return path


def request_snapshot(pid: int, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Ask process *pid* for its tasks and return its snapshot (see inspect_snapshot)."""
    sig = inspect_signal()
    if sig is None:
        raise InspectError("tidal ps needs Linux (real-time signals and /proc)")
    uid = _check_target(pid, sig)
    path = _private_dir(uid)
    stem = os.path.join(path, f"{pid}.{secrets.token_hex(8)}")
    request, answer = f"{stem}.request", f"{stem}.json"
    fd = os.open(request, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        if os.geteuid() == 0 and uid != 0:
            os.fchown(fd, uid, -1)  # the target deletes it when it answers
    finally:
        os.close(fd)
    pidfd = -1
    try:
        pidfd = _send(pid, sig)
        return _wait_for(answer, pid, pidfd, timeout)
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        for leftover in (request, answer):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def _send(pid: int, sig: int) -> int:
    # Through a pidfd where there is one: if the process exits and its PID is
    # reused meanwhile, the signal cannot reach the newcomer.
    pidfd = -1
    try:
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
        if pidfd >= 0:
            _check_target(pid, sig)  # still the process we checked
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        if pidfd >= 0:
            os.close(pidfd)
        raise InspectError(f"no process with PID {pid}") from None
    except PermissionError:
        if pidfd >= 0:
            os.close(pidfd)
        raise InspectError(
            f"permission denied: process {pid} belongs to another user; "
            "only its user or root may inspect it"
        ) from None
    return pidfd


def _wait_for(answer: str, pid: int, pidfd: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        try:
            with open(answer, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            pass
        else:
            try:
                found = json.loads(data)
            except ValueError:
                raise InspectError(f"process {pid} sent an unreadable answer") from None
            if not isinstance(found, dict):
                raise InspectError(f"process {pid} sent an unreadable answer")
            if "error" in found:
                raise InspectError(f"process {pid} could not take a snapshot: {found['error']}")
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            raise InspectError(
                f"process {pid} did not answer within {timeout:g} s: its main thread has "
                "not run Python code since (blocked in C code that does not return on a "
                "signal?); try a longer --timeout"
            )
        if _exited(pid, pidfd):
            raise InspectError(f"process {pid} exited before answering")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


def _exited(pid: int, pidfd: int) -> bool:
    if pidfd >= 0:
        ready, _, _ = select.select([pidfd], [], [], 0)
        return bool(ready)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


# -- rendering, as Python 3.14's asyncio tools do -----------------------------------


def _frame_label(entry: list[Any]) -> str:
    # "qualname /path/file.py:12", as 3.14 formats a remote frame.
    name, filename, lineno = entry
    if not filename and not lineno:
        return str(name)
    return f"{name} {filename}:{lineno}"


def _order(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Unnamed tasks in creation order (Task-<n>), then named ones by name.
    def key(task: dict[str, Any]) -> tuple[int, int, str]:
        name = str(task["name"])
        if name.startswith("Task-") and name[5:].isdigit():
            return (0, int(name[5:]), "")
        return (1, 0, name)

    return sorted(tasks, key=key)


def build_table(snapshot: dict[str, Any]) -> list[list[str]]:
    """The rows of ``ps``: tid, task id, name, stack, awaiter chain, awaiter name and id."""
    tasks = _order(list(snapshot.get("tasks", [])))
    by_id = {task["id"]: task for task in tasks}
    rows: list[list[str]] = []
    for task in tasks:
        stack = " -> ".join(str(entry[0]) for entry in task["stack"])
        base = [str(task["tid"]), hex(task["id"]), str(task["name"]), stack]
        if not task["awaited_by"]:
            rows.append([*base, "", "", "0x0"])
            continue
        for parent_id in task["awaited_by"]:
            parent = by_id.get(parent_id)
            chain = " -> ".join(str(e[0]) for e in parent["stack"]) if parent else ""
            name = str(parent["name"]) if parent else "Unknown"
            rows.append([*base, chain, name, hex(parent_id)])
    return rows


def _edges(snapshot: dict[str, Any]) -> list[tuple[int, int]]:
    # (awaiter, awaited) pairs between tasks of the snapshot.
    tasks = _order(list(snapshot.get("tasks", [])))
    known = {task["id"] for task in tasks}
    return [
        (parent, task["id"])
        for task in tasks
        for parent in task["awaited_by"]
        if parent in known
    ]


def find_cycles(snapshot: dict[str, Any]) -> list[list[int]]:
    """Await cycles between tasks, each as a list of ids that starts and ends alike."""
    children: dict[int, list[int]] = defaultdict(list)
    for parent, child in _edges(snapshot):
        children[parent].append(child)
    state: dict[int, int] = {}  # absent: unseen, 1: on the path, 2: finished
    path: list[int] = []
    cycles: list[list[int]] = []
    for root in list(children):
        if root in state:
            continue
        # Iterative depth-first search: a long chain must not hit the recursion limit.
        stack: list[tuple[int, int]] = [(root, 0)]
        state[root] = 1
        path.append(root)
        while stack:
            node, index = stack[-1]
            kids = children.get(node, [])
            if index < len(kids):
                stack[-1] = (node, index + 1)
                kid = kids[index]
                mark = state.get(kid)
                if mark is None:
                    state[kid] = 1
                    path.append(kid)
                    stack.append((kid, 0))
                elif mark == 1:
                    cycles.append([*path[path.index(kid):], kid])
            else:
                state[node] = 2
                path.pop()
                stack.pop()
    return cycles


def build_tree(snapshot: dict[str, Any]) -> list[list[str]]:
    """The await tree of ``pstree``: one list of lines per root.  Call find_cycles first."""
    tasks = _order(list(snapshot.get("tasks", [])))
    labels: dict[Any, str] = {}
    children: dict[Any, list[Any]] = defaultdict(list)
    frame_nodes: dict[Any, dict[str, Any]] = defaultdict(dict)
    counter = [0]

    def task_node(task_id: int) -> Any:
        return ("task", task_id)

    def frame_node(parent: Any, label: str) -> Any:
        # One node per distinct frame under a parent: tasks awaited at the
        # same place share the path to it.
        node = frame_nodes[parent].get(label)
        if node is None:
            counter[0] += 1
            node = ("frame", counter[0])
            labels[node] = label
            children[parent].append(node)
            frame_nodes[parent][label] = node
        return node

    by_id = {task["id"]: task for task in tasks}
    for task in tasks:
        labels[task_node(task["id"])] = f"(T) {task['name']}"
    awaiting: set[int] = set()
    for parent_id, child_id in _edges(snapshot):
        awaiting.add(parent_id)
        node = task_node(parent_id)
        for entry in reversed(by_id[parent_id]["stack"]):  # outermost first
            node = frame_node(node, f" {_frame_label(entry)}")
        child = task_node(child_id)
        if child not in children[node]:
            children[node].append(child)
    for task in tasks:
        if task["id"] not in awaiting:  # a leaf: show where it waits
            node = task_node(task["id"])
            for entry in reversed(task["stack"]):
                node = frame_node(node, f" {_frame_label(entry)}")
    below = {kid for kids in children.values() for kid in kids}

    def render(node: Any, prefix: str, last: bool, lines: list[str]) -> None:
        lines.append(f"{prefix}{'└── ' if last else '├── '}{labels[node]}")
        deeper = prefix + ("    " if last else "│   ")
        kids = children.get(node, [])
        for i, kid in enumerate(kids):
            render(kid, deeper, i == len(kids) - 1, lines)

    trees: list[list[str]] = []
    for node in labels:
        if node not in below:
            lines: list[str] = []
            render(node, "", True, lines)
            trees.append(lines)
    return trees


def _print_table(rows: list[list[str]], fmt: str) -> None:
    header = ["tid", "task id", "task name", "coroutine stack", "awaiter chain",
              "awaiter name", "awaiter id"]
    if fmt == "table":
        widths = (10, 20, 20, 50, 50, 15, 15)
        print(" ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True)))
        print("-" * 180)
        for row in rows:
            print(" ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)))
        return
    writer = csv.writer(sys.stdout, delimiter="," if fmt == "csv" else "\N{BANANA}")
    writer.writerow(header)
    writer.writerows(rows)


# -- the commands -------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """Add ``ps`` and ``pstree`` to the ``tidal`` command's subparsers."""
    for name, summary in (
        ("ps", "list the tasks of a running tidal program, with who awaits them"),
        ("pstree", "show the await tree of a running tidal program"),
    ):
        sub = commands.add_parser(
            name, help=summary,
            description=(
                f"{summary[0].upper()}{summary[1:]} (as Python 3.14's python -m asyncio "
                f"{name} shows them), without stopping or changing it: it answers a signal "
                "between two bytecodes.  The same user or root only.  See docs/debugging.md."
            ),
        )
        sub.add_argument("pid", type=int, help="the process to inspect")
        sub.add_argument(
            "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
            help=f"how long to wait for the answer (default {DEFAULT_TIMEOUT:g})",
        )
        if name == "ps":
            sub.add_argument(
                "--format", choices=("table", "csv", "bsv", "json"), default="table",
                help="table (default), csv, bsv (as 3.14), or json: the raw snapshot",
            )


def run(options: argparse.Namespace) -> int:
    """Run ``ps`` or ``pstree`` for parsed *options*; returns the exit status."""
    command = options.command
    try:
        snapshot = request_snapshot(options.pid, options.timeout)
    except InspectError as exc:
        print(f"tidal {command}: error: {exc}", file=sys.stderr)
        return 1
    if command == "ps":
        if options.format == "json":
            json.dump(snapshot, sys.stdout, indent=1)
            print()
            return 0
        _print_table(build_table(snapshot), options.format)
        _note_running(snapshot)
        return 0
    cycles = find_cycles(snapshot)
    if cycles:
        names = {task["id"]: str(task["name"]) for task in snapshot.get("tasks", [])}
        print("ERROR: await-graph contains cycles - cannot print a tree!", file=sys.stderr)
        print("", file=sys.stderr)
        for cycle in cycles:
            print("cycle: " + " → ".join(names.get(t, hex(t)) for t in cycle), file=sys.stderr)
        return 1
    for tree in build_tree(snapshot):
        print("\n".join(tree))
    _note_running(snapshot)
    return 0


def _note_running(snapshot: dict[str, Any]) -> None:
    # Not in 3.14's output, so on stderr: which task held its loop when the
    # snapshot was taken.  Seen twice, it is blocking that loop.
    for task in _order(list(snapshot.get("tasks", []))):
        if task.get("current"):
            where = f" in {_frame_label(task['stack'][0])}" if task["stack"] else ""
            print(
                f"note: task {task['name']!r} ({hex(task['id'])}) was running when asked"
                f"{where}: if it still is on a second look, it is blocking its loop",
                file=sys.stderr,
            )

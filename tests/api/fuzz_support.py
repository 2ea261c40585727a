"""Differential fuzzer of random task trees: tidal against stock asyncio.

A program is a pure function of its seed: ``generate(seed)`` builds a small
tree (top-level tasks, nested coroutines, TaskGroups, timeouts) of operations
-- sleep(0) steps, cancel() with and without a message, uncancel, shield,
gather, wait, wait_for, as_completed, Event, Queue, Lock/Semaphore, bare
futures, raising, catching CancelledError and carrying on, re-raising or
raising anew -- and ``script()`` renders it as plain Python that runs on its
own::

    python prog.py c     # stock asyncio (the oracle)
    python prog.py a     # tidal's API on tidal's loop (aio = tidal, tidal.run)
    python prog.py b     # asyncio's API on tidal's loop (Runner(loop_factory=...))

Each run records a trace: per log call the loop turn (a self-rescheduling
call_soon counts turns), the current task, a label, the value seen (results;
exceptions with their cause or context; cancel messages) and
``cancelling()``; plus what the loop's exception handler received once the
loop is closed and ``gc.collect()`` ran.  Traces must be equal, entry for entry.

Only asyncio's own arbitrary choices are kept out of the traces: a
TaskGroup cancels its children in set order, so programs with a TaskGroup of
two or more children create their tasks through a factory whose tasks hash
in creation order; ``as_completed`` registers inputs that are already done
in set order, so its outcomes are logged sorted; wait(FIRST_EXCEPTION)
retrieves the exceptions of done inputs in set order, so they are all
retrieved once it returns (see fuzz_prelude.py).

Programs avoid real timing: timeouts are 0 or negative (hit on the next
turn), 10 s (never hit) or None; ``sleep(3600)`` waits until cancelled.  When
the program's own operations are done, ``settle()`` cancels what is left in
rounds, in name order, so nothing is left for the runner's shutdown.

CLI: ``python tests/api/fuzz_support.py --seeds 0:20000 [--mode a|b]`` prints
each divergence class with its seeds and a minimized program.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRELUDE = (Path(__file__).parent / "fuzz_prelude.py").read_text()

FOOTER = '''

if __name__ == '__main__':
    import sys

    run(sys.argv[1] if len(sys.argv) > 1 else 'c')
    for entry in TRACE:
        print(*entry)
    for report in sorted(REPORTS):
        print('handler:', *report)
'''


# --------------------------------------------------------------------- model


@dataclass
class Coro:
    """An ``async def`` of the program: a top-level task (t1..) or a nested coroutine (c1..)."""

    name: str
    ops: list[Op]
    raises: bool = False  # end with ``raise ValueError(name)`` instead of ``return name``


@dataclass
class Op:
    """One operation of a body; *policy* says what its except clause does after logging."""

    kind: str
    policy: str = "bare"
    arg: Any = None  # kind-specific: count, index, task ref, timeout, message...
    targets: list[Any] = field(default_factory=list)  # awaitables: (kind, ref) pairs
    body: list[Op] = field(default_factory=list)  # TaskGroup / timeout blocks
    kids: list[Coro] = field(default_factory=list)  # TaskGroup children, spawned coroutine


@dataclass
class Program:
    """A whole program: the shared objects and the top-level tasks main() creates."""

    seed: int
    events: int
    queues: list[int]  # maxsize of each queue
    futures: int
    tasks: list[Coro]
    locks: list[str] = field(default_factory=list)  # Lock() or Semaphore(n)


#: What an operation's except clause does after logging: nothing around it (bare),
#: re-raise, carry on, re-raise only CancelledError, uncancel and carry on, await
#: a step and re-raise (cleanup), or raise a new error from inside the handler.
POLICIES = ["bare", "bare", "raise", "raise", "swallow", "swallow", "reraise_cancel",
            "reraise_cancel", "uncancel", "uncancel", "cleanup", "convert"]
TIMEOUTS = [None, 0, -1, 10]

# (kind, weight): the operations a body is made of.
WEIGHTS = [
    ("steps", 14), ("cancel", 14), ("await", 10), ("gather", 6), ("wait", 4),
    ("wait_for", 5), ("as_completed", 3), ("forever", 3), ("ev_wait", 4), ("ev_set", 4),
    ("ev_clear", 1), ("q_get", 3), ("q_put", 2), ("q_get_nowait", 1), ("q_put_nowait", 2),
    ("q_task_done", 1), ("q_join", 1), ("f_result", 2), ("f_exception", 2), ("f_cancel", 2),
    ("uncancel", 3), ("cancelling", 2), ("self_cancel", 2), ("raise", 3), ("spawn", 3),
    ("tg", 4), ("timeout", 5), ("reschedule", 4), ("lock", 3), ("locked", 1),
]


@dataclass
class _Scope:
    """What the operations at one point of a body may refer to."""

    owner: str
    min_ref: int  # top-level tasks t<min_ref>.. may be awaited (await edges form a DAG)
    depth: int  # coroutine nesting depth
    blocks: int = 0  # TaskGroup / timeout nesting depth
    cms: list[str] = field(default_factory=list)  # timeout context managers in scope
    local: list[str] = field(default_factory=list)  # tasks this body created


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.seed = seed
        self.ncoro = 0
        self.nmsg = 0

    def program(self) -> Program:
        r = self.r
        self.ntasks = r.choice([1, 2, 2, 3, 3, 3, 4])
        self.nev = r.choice([0, 1, 1, 2])
        self.queues = [r.choice([0, 0, 1]) for _ in range(r.choice([0, 0, 1]))]
        self.nfut = r.choice([0, 0, 1, 2])
        self.locks = [r.choice(["Lock()", "Semaphore(1)", "Semaphore(2)"])
                      for _ in range(r.choice([0, 0, 1]))]
        # t0 is "main's body": a task too, so settle() can cancel it when it blocks.
        tasks = [
            self.coro(f"t{i}", _Scope(f"t{i}", i + 1, 0), r.randint(1, 6 if i == 0 else 5))
            for i in range(self.ntasks + 1)
        ]
        return Program(self.seed, self.nev, self.queues, self.nfut, tasks, self.locks)

    def coro(self, name: str, sc: _Scope, n: int) -> Coro:
        return Coro(name, self.body(sc, n), self.r.random() < 0.2)

    def nested(self, sc: _Scope) -> Coro:
        self.ncoro += 1
        name = f"c{self.ncoro}"
        return self.coro(name, _Scope(name, sc.min_ref, sc.depth + 1), self.r.randint(1, 3))

    def body(self, sc: _Scope, n: int) -> list[Op]:
        return [self.op(sc) for _ in range(n)]

    def msg(self) -> str | None:
        if self.r.random() < 0.5:
            return None
        self.nmsg += 1
        return f"m{self.nmsg}"

    def awaitable_refs(self, sc: _Scope) -> list[str]:
        return [f"t{j}" for j in range(sc.min_ref, self.ntasks + 1)] + sc.local

    def target(self, sc: _Scope, coro_ok: bool = True) -> Any:
        r = self.r
        kinds = ["task"] * 3 if self.awaitable_refs(sc) else []
        kinds += ["fut"] * (self.nfut > 0)
        kinds += ["coro"] * 2 * (coro_ok and sc.depth < 2)
        if not kinds:
            return None
        kind = r.choice(kinds)
        if kind == "task":
            t: Any = ("task", r.choice(self.awaitable_refs(sc)))
        elif kind == "fut":
            t = ("fut", r.randrange(self.nfut))
        else:
            t = ("coro", self.nested(sc))
        return ("shield", t) if r.random() < 0.15 else t

    def targets(self, sc: _Scope, coro_ok: bool, lo: int, hi: int) -> list[Any]:
        ts = [self.target(sc, coro_ok) for _ in range(self.r.randint(lo, hi))]
        return [t for t in ts if t is not None]

    def op(self, sc: _Scope) -> Op:
        r = self.r
        while True:
            kind = r.choices([k for k, _ in WEIGHTS], [w for _, w in WEIGHTS])[0]
            op = self.make(kind, sc)
            if op is not None:
                op.policy = r.choice(POLICIES)
                return op

    def make(self, kind: str, sc: _Scope) -> Op | None:
        r = self.r
        if kind == "steps":
            return Op(kind, arg=r.choice([1, 1, 1, 2, 3]))
        if kind == "forever":
            return Op(kind)
        if kind in ("cancel", "uncancel", "cancelling"):
            refs = [f"t{j}" for j in range(self.ntasks + 1)] + sc.local + ["self"]
            ref = r.choice(refs)
            return Op(kind, arg=(ref, self.msg() if kind == "cancel" else None))
        if kind == "self_cancel":
            return Op("cancel", arg=("self", self.msg()))
        if kind == "raise":
            return Op(kind)
        if kind in ("await", "wait_for"):
            t = self.target(sc)
            if t is None:
                return None
            return Op(kind, targets=[t], arg=r.choice(TIMEOUTS))
        if kind == "gather":
            return Op(kind, targets=self.targets(sc, True, 0, 3), arg=r.random() < 0.5)
        if kind in ("wait", "as_completed"):
            ts = self.targets(sc, False, 1, 3)
            if not ts:
                return None
            when = r.choice(["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION"])
            return Op(kind, targets=ts, arg=(when, r.choice(TIMEOUTS)))
        if kind.startswith("ev_"):
            return Op(kind, arg=r.randrange(self.nev)) if self.nev else None
        if kind.startswith("q_"):
            if not self.queues:
                return None
            return Op(kind, arg=(r.randrange(len(self.queues)), r.randint(1, 9)))
        if kind.startswith("f_"):
            if not self.nfut:
                return None
            return Op(kind, arg=(r.randrange(self.nfut), r.randint(1, 9), self.msg()))
        if kind == "spawn":
            if sc.depth >= 2:
                return None
            c = self.nested(sc)
            sc.local.append(c.name)
            return Op(kind, kids=[c])
        if kind == "tg":
            if sc.blocks >= 2 or sc.depth >= 2:
                return None
            kids = [self.nested(sc) for _ in range(r.randint(0, 3))]
            sc.local.extend(k.name for k in kids)
            inner = _Scope(sc.owner, sc.min_ref, sc.depth, sc.blocks + 1, sc.cms, sc.local)
            return Op(kind, kids=kids, body=self.body(inner, r.randint(0, 3)))
        if kind == "timeout":
            if sc.blocks >= 2:
                return None
            cm = f"cm{sc.blocks}"
            how = r.choice(["timeout", "timeout", "timeout_at"])
            inner = _Scope(sc.owner, sc.min_ref, sc.depth, sc.blocks + 1, [*sc.cms, cm], sc.local)
            body = self.body(inner, r.randint(0, 3))
            return Op(kind, arg=(cm, how, r.choice(TIMEOUTS)), body=body)
        if kind == "lock":
            if not self.locks or sc.blocks >= 2:
                return None
            inner = _Scope(sc.owner, sc.min_ref, sc.depth, sc.blocks + 1, sc.cms, sc.local)
            i = r.randrange(len(self.locks))
            return Op(kind, arg=i, body=self.body(inner, r.randint(0, 3)))
        if kind == "locked":
            return Op(kind, arg=r.randrange(len(self.locks))) if self.locks else None
        if kind == "reschedule":
            if not sc.cms:
                return None
            return Op(kind, arg=(r.choice(sc.cms), r.choice([None, -1, 10])))
        raise AssertionError(kind)


def generate(seed: int) -> Program:
    """The program of *seed* (the same on every Python version)."""
    return _Gen(seed).program()


# ----------------------------------------------------------------- rendering


def _expr(t: Any) -> str:
    kind, ref = t
    if kind == "task":
        return f"T[{ref!r}]"
    if kind == "fut":
        return f"F[{ref}]"
    if kind == "coro":
        return f"{ref.name}()"
    return f"aio.shield({_expr(ref)})"


def _when(delay: Any) -> str:
    if delay is None:
        return "None"
    return f"aio.get_running_loop().time() {'-' if delay < 0 else '+'} {abs(delay)}"


def _task(ref: str) -> str:
    return "aio.current_task()" if ref == "self" else f"T[{ref!r}]"


def _core(op: Op, lb: str) -> list[str]:
    """The lines that carry out *op* (label *lb*) and log what it returned."""
    k, a = op.kind, op.arg
    xs = ", ".join(_expr(t) for t in op.targets)
    if k == "steps":
        if a == 1:
            return ["await aio.sleep(0)"]
        return [f"for _ in range({a}):", "    await aio.sleep(0)"]
    if k == "forever":
        return ["await aio.sleep(3600)"]
    if k in ("cancel", "uncancel", "cancelling"):
        msg = "" if a[1] is None else repr(a[1])
        return [f"log({lb!r}, {_task(a[0])}.{k}({msg}))"]
    if k == "raise":
        return [f"raise ValueError({lb!r})"]
    if k == "await":
        return [f"log({lb!r}, await {xs})"]
    if k == "wait_for":
        return [f"log({lb!r}, await aio.wait_for({xs}, {a}))"]
    if k == "gather":
        args = ", ".join([xs] * bool(xs) + ["return_exceptions=True"] * bool(a))
        return [f"log({lb!r}, await aio.gather({args}))"]
    if k == "wait" and a[0] == "FIRST_EXCEPTION":
        return [f"log({lb!r}, await waited([{xs}], {a[1]}))"]
    if k == "wait":
        return [f"log({lb!r}, await aio.wait([{xs}], return_when=aio.{a[0]}, timeout={a[1]}))"]
    if k == "as_completed":
        return [f"log({lb!r}, await completed([{xs}], {a[1]}))"]
    if k.startswith("ev_"):
        call = {"ev_wait": "await E[{}].wait()", "ev_set": "E[{}].set()",
                "ev_clear": "E[{}].clear()"}[k].format(a)
        return [f"log({lb!r}, {call})"] if k == "ev_wait" else [call]
    if k.startswith("q_"):
        i, v = a
        call = {"q_get": f"await Q[{i}].get()", "q_put": f"await Q[{i}].put({v})",
                "q_get_nowait": f"Q[{i}].get_nowait()", "q_put_nowait": f"Q[{i}].put_nowait({v})",
                "q_task_done": f"Q[{i}].task_done()", "q_join": f"await Q[{i}].join()"}[k]
        return [f"log({lb!r}, {call})"] if k in ("q_get", "q_get_nowait", "q_join") else [call]
    if k.startswith("f_"):
        i, v, msg = a
        if k == "f_result":
            return [f"F[{i}].set_result({v})"]
        if k == "f_exception":
            return [f"F[{i}].set_exception(ValueError({v}))"]
        return [f"log({lb!r}, F[{i}].cancel({'' if msg is None else repr(msg)}))"]
    if k == "spawn":
        n = op.kids[0].name
        return [f"T[{n!r}] = aio.create_task({n}(), name={n!r})"]
    if k == "tg":
        tg = f"tg{lb.count('.')}"
        lines = [f"T[{c.name!r}] = {tg}.create_task({c.name}(), name={c.name!r})" for c in op.kids]
        lines += _body(op.body, lb)
        return [f"async with aio.TaskGroup() as {tg}:", *_indent(lines or ["pass"]),
                f"log({lb!r}, 'tg exit')"]
    if k == "timeout":
        cm, how, d = a
        ctx = f"aio.timeout({d})" if how == "timeout" else f"aio.timeout_at({_when(d)})"
        return [f"async with {ctx} as {cm}:", *_indent(_body(op.body, lb) or ["pass"]),
                f"log({lb!r}, {cm}.expired())"]
    if k == "reschedule":
        return [f"{a[0]}.reschedule({_when(a[1])})"]
    if k == "lock":
        return [f"async with L[{a}]:", *_indent(_body(op.body, lb) or ["pass"]),
                f"log({lb!r}, 'unlocked')"]
    if k == "locked":
        return [f"log({lb!r}, L[{a}].locked())"]
    raise AssertionError(k)


def _indent(lines: list[str]) -> list[str]:
    return ["    " + ln for ln in lines]


_HANDLERS = {
    "raise": ["    raise"],
    "swallow": [],
    "reraise_cancel": ["    if isinstance(e, aio.CancelledError):", "        raise"],
    "cleanup": ["    await aio.sleep(0)", "    raise"],
}


def _op(op: Op, lb: str) -> list[str]:
    core = _core(op, lb)
    if op.policy == "bare" or op.kind == "spawn":
        return core
    if op.policy == "uncancel":
        after = ["    if isinstance(e, aio.CancelledError):",
                 f"        log({lb!r}, aio.current_task().uncancel())"]
    elif op.policy == "convert":
        after = [f"    raise RuntimeError({lb!r})"]
    else:
        after = _HANDLERS[op.policy]
    return ["try:", *_indent(core), "except BaseException as e:", f"    log({lb!r}, e)", *after]


def _body(ops: list[Op], prefix: str) -> list[str]:
    return [ln for i, op in enumerate(ops) for ln in _op(op, f"{prefix}.{i}")]


def coros(p: Program) -> Iterator[Coro]:
    """Every coroutine definition of *p*, top-level tasks first, then nested ones."""

    def walk_ops(ops: list[Op]) -> Iterator[Coro]:
        for op in ops:
            for t in op.targets:
                while t[0] == "shield":
                    t = t[1]
                if t[0] == "coro":
                    yield from walk(t[1])
            for c in op.kids:
                yield from walk(c)
            yield from walk_ops(op.body)

    def walk(c: Coro) -> Iterator[Coro]:
        yield c
        yield from walk_ops(c.ops)

    for c in p.tasks:
        yield from walk(c)


def render(p: Program) -> str:
    """The program's own code (no prelude): its coroutines and main()."""
    out = [f"# tidal task-tree fuzzer, seed {p.seed}"]
    for c in sorted(coros(p), key=lambda c: (c.name[0] != "t", int(c.name[1:]))):
        end = f"raise ValueError({c.name!r})" if c.raises else f"return {c.name!r}"
        out += ["", "", f"async def {c.name}():", *_indent(_body(c.ops, c.name)), f"    {end}"]
    out += ["", "", "async def main():", "    loop = aio.get_running_loop()",
            "    loop.set_exception_handler(on_error)", "    loop.call_soon(tick, loop)"]
    if any(op.kind == "tg" and len(op.kids) > 1 for ops in _op_lists(p) for op in ops):
        out.append("    loop.set_task_factory(keyed_tasks())")
    if p.events:
        out.append(f"    E.extend(aio.Event() for _ in range({p.events}))")
    if p.queues:
        out.append(f"    Q.extend([{', '.join(f'aio.Queue({m})' for m in p.queues)}])")
    if p.futures:
        out.append(f"    F.extend(loop.create_future() for _ in range({p.futures}))")
    if p.locks:
        out.append(f"    L.extend([{', '.join('aio.' + k for k in p.locks)}])")
    out += [f"    T[{c.name!r}] = aio.create_task({c.name}(), name={c.name!r})" for c in p.tasks]
    out.append("    await settle()")
    return "\n".join(out) + "\n"


def script(p: Program) -> str:
    """*p* as a standalone script: ``python prog.py a|b|c`` prints its trace."""
    return PRELUDE + "\n" + render(p) + FOOTER


# ------------------------------------------------------------------- running


@dataclass
class Result:
    """What one run of a program showed."""

    trace: list[tuple[Any, ...]]
    reports: list[tuple[str, ...]]


class Hang(BaseException):
    """A run took longer than the watchdog allows."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def run_code(code: Any, mode: str, limit: float = 10) -> Result:
    """Run compiled ``script()`` text in mode a, b or c; *limit* seconds at most.

    The watchdog shares ITIMER_REAL with pytest-timeout: a timer already
    running is put back afterwards with what was left of it.
    """
    ns: dict[str, Any] = {"__name__": "tidal_fuzz_program"}
    exec(code, ns)
    old = signal.signal(signal.SIGALRM, _alarm)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, limit)
    if outer:  # pytest-timeout's: ours must not outlast it
        signal.setitimer(signal.ITIMER_REAL, min(limit, outer))
    start = time.monotonic()
    try:
        ns["run"](mode)
    except Hang:
        ns["TRACE"].append((1 << 30, "run", "run", f"hang: no end after {limit} s", 0))
        asyncio.events._set_running_loop(None)  # the abandoned loop's, so the next run starts
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer:
            left = max(outer - (time.monotonic() - start), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, interval)
    result = Result(list(ns["TRACE"]), sorted(ns["REPORTS"]))
    ns.clear()
    return result


def run_program(p: Program, modes: str = "cab") -> dict[str, Result]:
    """Run *p* in each of *modes*."""
    code = compile(script(p), f"<tidal fuzz seed {p.seed}>", "exec")
    return {m: run_code(code, m) for m in modes}


def _fmt(e: tuple[Any, ...]) -> str:
    turn, task, label, value, cancelling = e
    return f"turn {turn:>3}  {task:<6} {label:<10} {value}" + (
        f"  [cancelling={cancelling}]" if cancelling else "")


def _norm(s: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\b[tcm]\d+\b", "X", s))


_CANCELLED = re.compile(r"CancelledError\(('[^']*')?\)")


_DURING = re.compile(r" \{during [^{}]*\}")  # the innermost context of an exception


def _no_context(s: str) -> str:
    while (t := _DURING.sub("", s)) != s:
        s = t
    return s


def _classify(w: tuple[Any, ...], g: tuple[Any, ...]) -> str:
    """A short name for the way entry *g* differs from asyncio's *w*."""
    if g[1:] == w[1:]:
        return "turn: " + _norm(w[3])
    if g[1:3] != w[1:3]:
        return f"sequence: {_norm(w[2])} {_norm(w[3])} | got {_norm(g[2])} {_norm(g[3])}"
    if g[3] == w[3]:
        return f"cancelling(): {w[4]} | got {g[4]}"
    if _no_context(g[3]) == _no_context(w[3]):
        kind = "different" if "{during " in g[3] and "{during " in w[3] else (
            "spurious" if "{during " in g[3] else "missing")
        return f"exception context {kind}"
    if _CANCELLED.sub("C", g[3]) == _CANCELLED.sub("C", w[3]):
        wm = [m.group(1) for m in _CANCELLED.finditer(w[3])]
        gm = [m.group(1) for m in _CANCELLED.finditer(g[3])]
        x, y = next((x, y) for x, y in zip(wm, gm, strict=True) if x != y)
        return "cancel message " + ("lost" if y is None else "spurious" if x is None else "wrong")
    return f"value: {_norm(w[3])} | got {_norm(g[3])}"


def compare(got: Result, want: Result) -> tuple[str, str] | None:
    """None if *got* matches the oracle *want*; else (class signature, readable diff)."""
    g, w = got.trace, want.trace
    if g != w:
        i = next((i for i, (x, y) in enumerate(zip(g, w, strict=False)) if x != y),
                 min(len(g), len(w)))
        if i >= len(g):
            sig = "missing: " + _norm(w[i][3])
        elif i >= len(w):
            sig = "extra: " + _norm(g[i][3])
        else:
            sig = _classify(w[i], g[i])
        lines = [f"first difference at entry {i} (of {len(w)} in asyncio's trace):"]
        lines += ["  " + _fmt(e) for e in w[max(0, i - 8):i]]
        lines += ["- " + _fmt(e) for e in w[i:i + 6]]
        lines += ["+ " + _fmt(e) for e in g[i:i + 6]]
        return sig, "\n".join(lines)
    if got.reports != want.reports:
        extra = sorted((Counter(got.reports) - Counter(want.reports)).elements())
        missing = sorted((Counter(want.reports) - Counter(got.reports)).elements())
        sig = "reports: " + "; ".join(sorted(set(
            [f"+{_norm(r[0])}" for r in extra] + [f"-{_norm(r[0])}" for r in missing])))
        lines = ["exception handler reports differ:"]
        lines += [f"+ {r}" for r in extra] + [f"- {r}" for r in missing]
        return sig, "\n".join(lines)
    return None


@dataclass
class Divergence:
    """A program whose run in *mode* differs from asyncio's."""

    seed: int
    mode: str
    signature: str
    diff: str
    program: Program


def check(p: Program, modes: str = "ab") -> list[Divergence]:
    """Run *p* on asyncio and in each of *modes*; the divergences found."""
    res = run_program(p, "c" + modes)
    out = []
    for m in modes:
        d = compare(res[m], res["c"])
        if d is not None:
            out.append(Divergence(p.seed, m, d[0], d[1], p))
    return out


def fuzz(seeds: range, modes: str = "ab") -> tuple[int, list[Divergence]]:
    """Check the programs of *seeds*; (programs run, divergences)."""
    gc.collect()
    gc.freeze()  # so the collection after each run scans only the run's own objects
    try:
        found = [d for s in seeds for d in check(generate(s), modes)]
    finally:
        gc.unfreeze()
    return len(seeds), found


# ----------------------------------------------------------------- shrinking


def _op_lists(p: Program) -> list[list[Op]]:
    lists: list[list[Op]] = []

    def walk(ops: list[Op]) -> None:
        lists.append(ops)
        for op in ops:
            walk(op.body)

    for c in coros(p):
        walk(c.ops)
    return lists


def _unshield(t: Any) -> Any:
    return t[1] if t[0] == "shield" else t


def _candidates(p: Program) -> Iterator[Program]:
    """Smaller or simpler variants of *p*, roughly biggest cuts first."""
    for i in range(len(p.tasks)):
        q = copy.deepcopy(p)
        del q.tasks[i]
        yield q
    n = len(_op_lists(p))
    for li in range(n):
        for j in range(len(_op_lists(p)[li])):
            q = copy.deepcopy(p)
            del _op_lists(q)[li][j]
            yield q
    for li in range(n):
        for j, op in enumerate(_op_lists(p)[li]):
            edits = []
            if op.kind in ("tg", "timeout", "lock"):
                edits.append(lambda ops, j=j: ops.__setitem__(slice(j, j + 1), ops[j].body))
            for ti, t in enumerate(op.targets):
                if len(op.targets) > 1:
                    edits.append(lambda ops, j=j, ti=ti: ops[j].targets.pop(ti))
                if t[0] == "shield":
                    edits.append(lambda ops, j=j, ti=ti: ops[j].targets.__setitem__(
                        ti, _unshield(ops[j].targets[ti])))
            for ki in range(len(op.kids) if op.kind == "tg" else 0):
                edits.append(lambda ops, j=j, ki=ki: ops[j].kids.pop(ki))
            if op.policy != "bare":
                edits.append(lambda ops, j=j: setattr(ops[j], "policy", "bare"))
            if op.policy not in ("bare", "raise"):
                edits.append(lambda ops, j=j: setattr(ops[j], "policy", "raise"))
            if op.kind == "steps" and op.arg > 1:
                edits.append(lambda ops, j=j: setattr(ops[j], "arg", 1))
            for edit in edits:
                q = copy.deepcopy(p)
                edit(_op_lists(q)[li])
                yield q
    for ci, c in enumerate(coros(p)):
        if c.raises:
            q = copy.deepcopy(p)
            list(coros(q))[ci].raises = False
            yield q
    text = render(p)
    for attr, used in (("events", "E["), ("futures", "F[")):
        if getattr(p, attr) and used not in text:
            q = copy.deepcopy(p)
            setattr(q, attr, 0)
            yield q
    for attr, used in (("queues", "Q["), ("locks", "L[")):
        if getattr(p, attr) and used not in text:
            q = copy.deepcopy(p)
            setattr(q, attr, [])
            yield q


def shrink(d: Divergence, budget: int = 1500) -> Divergence:
    """Greedily simplify *d*'s program while the same divergence class remains."""
    best = d
    runs = 0
    gc.collect()
    gc.freeze()
    try:
        progress = True
        while progress and runs < budget:
            progress = False
            for q in _candidates(best.program):
                runs += 1
                found = [x for x in check(q, d.mode) if x.signature == d.signature]
                if found:
                    best = found[0]
                    progress = True
                    break
                if runs >= budget:
                    break
    finally:
        gc.unfreeze()
    return best


# ----------------------------------------------------------------------- CLI


def _seeds(spec: str) -> range:
    lo, _, hi = spec.partition(":")
    return range(int(lo), int(hi)) if hi else range(int(lo), int(lo) + 1)


def main(argv: list[str] | None = None) -> int:
    """Command line: fuzz a seed range, print each divergence class with a minimal program."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0:1000", help="a range lo:hi, or one seed")
    ap.add_argument("--mode", default="ab", help="a (tidal API), b (asyncio API on tidal), ab")
    ap.add_argument("--show", action="store_true",
                    help="print the first seed's whole script, and a minimized one if it diverges")
    ap.add_argument("--no-shrink", action="store_true", help="do not minimize the programs")
    ap.add_argument("--out", help="write each class's minimized script to this directory")
    args = ap.parse_args(argv)
    seeds = _seeds(args.seeds)
    if args.show:
        p = generate(seeds[0])
        print(script(p))
        for d in check(p, args.mode):
            print(f"\n### mode {d.mode}: {d.signature}\n{d.diff}")
            if not args.no_shrink:
                print(f"\n### minimized:\n{script(shrink(d).program)}")
        return 0
    classes: dict[tuple[str, str], list[Divergence]] = {}
    for start in range(seeds.start, seeds.stop, 1000):
        for d in fuzz(range(start, min(start + 1000, seeds.stop)), args.mode)[1]:
            classes.setdefault((d.mode, d.signature), []).append(d)
    total = sum(len(v) for v in classes.values())
    print(f"{len(seeds)} programs, modes {args.mode}: {total} divergent runs, "
          f"{len(classes)} classes")
    for (mode, sig), ds in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        print(f"\n{'=' * 78}\nmode {mode}: {len(ds)} programs: {sig}")
        print("seeds:", " ".join(str(d.seed) for d in ds[:30]), "..." if len(ds) > 30 else "")
        best = min(ds[:20], key=lambda d: len(render(d.program)))
        if not args.no_shrink:
            best = shrink(best)
        print(f"--- minimized from seed {best.seed} (runs with fuzz_prelude.py in front; "
              f"--out DIR writes the whole script) ---\n{render(best.program)}\n{best.diff}")
        if args.out:
            path = Path(args.out) / f"mode{mode}_seed{best.seed}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# {sig}\n" + script(best.program))
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())

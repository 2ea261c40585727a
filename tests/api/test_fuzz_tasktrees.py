"""Differential fuzzing of random task trees: tidal, both ways in, against asyncio.

Every seed is a program (``fuzz_support.generate``) of tasks that sleep,
cancel, uncancel, shield, gather, wait, time out, use TaskGroups, Events,
Queues, locks and futures.  Each runs on stock asyncio (the oracle), with
tidal's API on tidal's loop (a) and with asyncio's API on tidal's loop (b);
the traces and the exception handler's reports must be the same.

A failure prints the seed, a minimized program and the first difference;
``python tests/api/fuzz_support.py --seeds N`` reproduces it, and
``--show --seeds N`` prints a script that runs on its own
(``python prog.py a|b|c``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fuzz_support as fz
import pytest

#: 1000 programs per Python, each run three ways, in four chunks.
SEEDS = 1000
CHUNK = 250


@pytest.mark.timeout(600)
@pytest.mark.parametrize("start", range(0, SEEDS, CHUNK))
def test_task_trees_behave_as_on_asyncio(start: int) -> None:
    seeds = range(start, start + CHUNK)
    ran, found = fz.fuzz(seeds)
    assert ran == CHUNK
    if found:
        seen = sorted({(d.mode, d.signature) for d in found})
        first = fz.shrink(found[0], budget=300)
        pytest.fail(
            f"{len(found)} divergent runs in seeds {seeds.start}:{seeds.stop}, "
            f"{len(seen)} classes:\n" + "\n".join(f"  mode {m}: {s}" for m, s in seen)
            + f"\n\nseed {first.seed}, mode {first.mode}, minimized (the whole script: "
            f"python tests/api/fuzz_support.py --show --seeds {first.seed}):\n"
            + fz.render(first.program) + "\n" + first.diff,
            pytrace=False,
        )


def test_a_program_is_a_function_of_its_seed() -> None:
    assert fz.render(fz.generate(7)) == fz.render(fz.generate(7))
    assert fz.render(fz.generate(7)) != fz.render(fz.generate(8))


def test_the_generator_reaches_every_operation() -> None:
    kinds: set[str] = set()
    for seed in range(200):
        for c in fz.coros(fz.generate(seed)):
            stack = list(c.ops)
            while stack:
                op = stack.pop()
                kinds.add(op.kind)
                stack += op.body
    assert kinds == {k for k, _ in fz.WEIGHTS} - {"self_cancel"}


def test_a_divergence_is_reported_with_its_class() -> None:
    want = fz.Result([(1, "t1", "t1.0", "CancelledError('m1')", 1)], [])
    got = fz.Result([(1, "t1", "t1.0", "CancelledError()", 1)], [])
    sig, diff = fz.compare(got, want) or ("", "")
    assert sig == "cancel message lost"
    assert "- turn   1  t1" in diff and "+ turn   1  t1" in diff
    late = fz.Result([(2, "t1", "t1.0", "CancelledError('m1')", 1)], [])
    assert fz.compare(late, want) is not None
    report = fz.Result(want.trace, [("Task exception was never retrieved", "ValueError()", "t1")])
    assert (fz.compare(report, want) or ("",))[0].startswith("reports: +Task exception")
    # The order of two tasks inside one loop turn counts too.
    two = [(1, "t1", "t1.0", "1", 0), (1, "t2", "t2.0", "2", 0)]
    assert fz.compare(fz.Result(two, []), fz.Result(two, [])) is None
    swapped = fz.compare(fz.Result(two[::-1], []), fz.Result(two, []))
    assert swapped is not None and swapped[0].startswith("sequence: ")


def test_the_printed_program_runs_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(fz.script(fz.generate(3)))
    out = {
        mode: subprocess.run(
            [sys.executable, str(path), mode], capture_output=True, text=True, timeout=60,
            check=True,
        ).stdout
        for mode in "ca"
    }
    assert "final" in out["c"]
    assert sorted(out["a"].splitlines()) == sorted(out["c"].splitlines())

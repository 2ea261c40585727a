"""Every ``pytest.raises/warns(match=...)`` in tests/ compares the whole message.

asyncio is the oracle only for what a test compares: an unanchored pattern
accepts any message that contains it, so a message tidal words differently
from asyncio passes unseen.  Literal patterns (and f-strings) must start with
``^`` or ``\\A`` and end with ``$`` or ``\\Z``; patterns built at run time are
left to review.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _ends(node: ast.expr) -> tuple[str, str] | None:
    """The literal start and end of a pattern expression, if it has them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first, last = node.values[0], node.values[-1]
        if isinstance(first, ast.Constant) and isinstance(last, ast.Constant):
            return str(first.value), str(last.value)
    return None


def _anchored(ends: tuple[str, str]) -> bool:
    return ends[0].startswith(("^", r"\A")) and ends[1].endswith(("$", r"\Z"))


def unanchored() -> list[str]:
    """``file:line pattern`` for each literal match= pattern not anchored at both ends."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("raises", "warns")):
                continue
            for kw in node.keywords:
                ends = _ends(kw.value) if kw.arg == "match" else None
                if ends is None:
                    continue
                if not _anchored(ends):
                    rel = path.relative_to(TESTS.parent).as_posix()
                    found.append(f"{rel}:{kw.value.lineno} {ast.unparse(kw.value)}")
    return found


def test_match_patterns_are_anchored() -> None:
    assert unanchored() == []


def test_the_scanner_sees_unanchored_patterns() -> None:
    source = (
        "with pytest.raises(E, match='part'): pass\n"
        "with pytest.raises(E, match=r'^whole$'): pass\n"
        "with pytest.warns(W, match=f'^{x} is\\\\.'): pass\n"
        "with pytest.raises(E, match=f'\\\\A{x}\\\\Z'): pass\n"
    )
    patterns = [kw.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
                for kw in n.keywords]
    ends = [_ends(p) for p in patterns]
    assert [e is not None and _anchored(e) for e in ends] == [False, True, False, True]

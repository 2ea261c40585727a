"""List tests that reach into asyncio's private internals, for review.

    python conformance/scan_internals.py [MODULE ...]

A reviewing aid for exclusions.toml, not a filter: it prints each test (of
the classes that run, including the Tidal* ones) whose source mentions a
private asyncio module or a private attribute of the loop, with the matches.
Whether the test really depends on asyncio's implementation, rather than on
behaviour tidal must match, is decided by reading it.
"""

from __future__ import annotations

import inspect
import re
import sys
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])

import _facade
import exclusions
import targets

PATTERNS = [
    r"mock\.patch(?:\.object)?\(\s*['\"]?asyncio\.[\w.]+",
    r"\b(?:base_events|selector_events|unix_events|proactor_events|sslproto|base_subprocess"
    r"|transports|constants|coroutines|format_helpers)\.\w+",
    r"\bloop\._\w+",
    r"\b_asyncio\b",
    r"@patch_socket",
]
_RX = re.compile("|".join(PATTERNS))


def scan(module: str) -> list[tuple[str, list[str]]]:
    excl = exclusions.load()
    if excl.module_reason(module):
        return []
    for helper in ("utils", "functional"):
        _facade.load_module(f"{targets.PACKAGE}.{helper}")
    mod = _facade.load_module(f"{targets.PACKAGE}.{module}")
    classes = targets.module_test_classes(mod)
    builder = targets.BUILDERS.get(module)
    if builder is not None:
        classes += builder(mod)
    out = []
    loader = unittest.TestLoader()
    for cls in classes:
        for name in loader.getTestCaseNames(cls):
            if excl.reason(module, cls.__qualname__, name):
                continue
            try:
                src = inspect.getsource(getattr(cls, name))
            except (OSError, TypeError):
                continue
            hits = sorted(set(_RX.findall(src)))
            if hits:
                out.append((f"{module}.{cls.__qualname__}.{name}", hits))
    return out


def main() -> None:
    _facade.make_tidal_default()
    modules = sys.argv[1:] or targets.all_modules()
    for module in modules:
        for test_id, hits in scan(module):
            print(f"{test_id}: {', '.join(hits)}")


if __name__ == "__main__":
    main()

"""Load CPython's test_asyncio modules so that their ``asyncio`` is tidal.

Each test module is executed with its own ``__import__`` hook: ``import
asyncio`` (and ``from asyncio import x``) binds a *facade* module instead of
the real package.  The facade answers every name that tidal exports from
tidal (``asyncio.Lock`` is ``tidal.Lock`` once tidal has one) and falls back
to the real asyncio for the rest (submodules, private helpers).  That is the
``import tidal as asyncio`` way in, applied to the unmodified test sources;
asyncio's own modules and tidal itself keep seeing the real asyncio.

The harness also makes tidal the *default* event-loop policy, so a test that
resets the policy (``asyncio.set_event_loop_policy(None)``) keeps getting
tidal loops from ``asyncio.new_event_loop()``.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib.util
import sys
import types
from typing import Any

import tidal

_real_import = builtins.__import__

#: Names the facade takes from tidal: its public API.
TIDAL_NAMES: frozenset[str] = frozenset(tidal.__all__)


#: Public asyncio names the tests used that tidal does not export (so the
#: tests ran asyncio's own object for them), for the report.
FALLTHROUGH: set[str] = set()
_PUBLIC = frozenset(asyncio.__all__)


class AsyncioFacade(types.ModuleType):
    """``asyncio`` as a test module sees it: tidal first, then asyncio."""

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set on the facade itself (mock.patch
        # sets and deletes names on it like on any module).
        if name in TIDAL_NAMES:
            return getattr(tidal, name)
        value = getattr(asyncio, name)
        if name in _PUBLIC and not getattr(value, "__module__", "").startswith("tidal"):
            FALLTHROUGH.add(name)  # (DefaultEventLoopPolicy is tidal's here)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(dir(asyncio)) | TIDAL_NAMES)


facade = AsyncioFacade("asyncio", "asyncio as tidal's conformance tests see it")
facade.__file__ = asyncio.__file__
facade.__path__ = list(asyncio.__path__)


def _hooked_import(
    name: str,
    globals: Any = None,
    locals: Any = None,
    fromlist: Any = (),
    level: int = 0,
) -> Any:
    module = _real_import(name, globals, locals, fromlist, level)
    if level == 0 and (name == "asyncio" or name.startswith("asyncio.")):
        # ``import asyncio.x`` binds the top package; ``from asyncio import
        # x`` reads x from the package.  Both get the facade.  ``from
        # asyncio.x import y`` is left alone: it names a submodule.
        if name == "asyncio" or not fromlist:
            return facade
    return module


_builtins = dict(builtins.__dict__)
_builtins["__import__"] = _hooked_import


def load_module(fullname: str) -> types.ModuleType:
    """Import *fullname* (a test module) with the facade as its asyncio."""
    existing = sys.modules.get(fullname)
    if existing is not None and getattr(existing, "__tidal_facade__", False):
        return existing
    spec = importlib.util.find_spec(fullname)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {fullname!r}")
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__builtins__"] = _builtins
    module.__dict__["__tidal_facade__"] = True
    sys.modules[fullname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[fullname]
        raise
    parent, _, child = fullname.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def make_tidal_default() -> None:
    """Install tidal's policy and make it what a policy reset restores."""
    # asyncio.events creates the default policy from the package attribute
    # DefaultEventLoopPolicy when the policy is reset to None.
    asyncio.DefaultEventLoopPolicy = tidal.EventLoopPolicy  # type: ignore[misc]
    tidal.install()

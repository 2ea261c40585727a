"""What the compiled (mypyc) build needs around its native classes.

tidal ships one source and two builds (see docs/design.md, "Compiled build").
This module is never compiled: it holds the few things compiled code cannot
do itself, and does nothing in the pure-Python build.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    # mypyc reads the decorator at compile time and drops it from the compiled
    # code; at run time (pure build, or mypy_extensions absent) it is a no-op.
    from mypy_extensions import mypyc_attr as mypyc_attr
else:

    def mypyc_attr(*args: Any, **kwargs: Any) -> Any:
        """No-op stand-in for ``mypy_extensions.mypyc_attr`` (a build-time marker)."""
        return lambda cls: cls


_T = TypeVar("_T")
_EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _core_is_compiled() -> bool:
    # Asked before the compiled modules exist (they import this module): where
    # will tidal._core.futures load from? The core modules are compiled
    # together (setup.py's COMPILED), so one answers for all.
    spec = importlib.util.find_spec("tidal._core.futures")
    return spec is not None and str(spec.origin or "").endswith(_EXTENSION_SUFFIXES)


if TYPE_CHECKING or _core_is_compiled():

    class NativeBase:
        """The base of the compiled build's Handle and Future: an interpreted class.

        mypyc gives a native class whose base is an interpreted class without
        ``__slots__`` a ``__dict__`` and a ``__weakref__`` (it has neither
        otherwise, mypyc/mypyc#1102), so the compiled classes themselves can
        be the public ones and calls into them stay native. mypyc's
        deallocator does not clear weak references: setup.py adds that call
        to the generated C (see there). The pure build has ``object`` here:
        its classes keep their ``__slots__`` layout and their MRO.
        """

else:
    NativeBase = object


def is_compiled(module: ModuleType) -> bool:
    """True if *module* was loaded from a compiled extension (the mypyc build)."""
    return str(getattr(module, "__file__", "") or "").endswith(_EXTENSION_SUFFIXES)


def public_class(cls: type[_T], *bases: type) -> type[_T]:
    """The class users see for *cls*: *cls* itself, unless it has no weak references.

    mypyc's native classes cannot be weakly referenced (mypyc/mypyc#1102).
    The core's classes derive from NativeBase instead and come back as they
    are; for a compiled class without weak references this returns an
    interpreted subclass whose only addition is ``__weakref__`` (every call
    on its instances then goes through mypyc's glue);
    *bases* (the public classes of *cls*'s bases) keep ``issubclass`` between
    the public classes as it is between the native ones. In the pure build
    ``__slots__`` already hold ``__weakref__`` and *cls* is returned as it is.
    """
    offset: Any = type.__dict__["__weakrefoffset__"]
    if offset.__get__(cls):
        return cls
    # One weak-reference slot, added once: by the first public class of a
    # hierarchy (the others inherit it through *bases*).
    inherited = any(offset.__get__(base) for base in bases)
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__slots__": () if inherited else ("__weakref__",),
    }
    return type(cls.__name__, (cls, *bases), namespace)


def frame_key(func: Any) -> Any:
    """What identifies *func*'s frames in a traceback: its code object, or for a
    compiled function (which has none; mypyc adds a synthetic frame with a
    fresh code object) its module name and function name."""
    code = getattr(func, "__code__", None)
    if code is not None:
        return code
    module = getattr(func, "__module__", None)
    if module is None:
        module = func.__objclass__.__module__
    return (module, func.__name__)


def compiled_build() -> bool:
    """True when tidal's core was loaded from the compiled (mypyc) build."""
    from tidal._core import futures

    return is_compiled(futures)

"""Which test_asyncio modules run, and how each is pointed at tidal.

Three kinds of module:

* **mixin modules** (test_futures, test_tasks, test_futures2,
  test_eager_task_factory): CPython writes the tests once as mixins and
  instantiates them per implementation (``CFutureTests``, ``PyTask_PyFuture_
  Tests``...).  :data:`BUILDERS` adds tidal as one more implementation; the
  C/Py instantiations test asyncio's own code and are listed in
  ``exclusions.toml``.
* **loop modules** (test_events, test_sock_lowlevel, test_sendfile,
  test_subprocess, test_server, ...): a concrete class per asyncio loop
  (``EPollEventLoopTests``...); the builder derives a class whose loop factory
  returns ``tidal.new_event_loop()`` and the selector-specific classes are
  excluded.
* **high-level modules** (test_locks, test_queues, test_taskgroups...): run as
  they are; their loops come from ``asyncio.new_event_loop()``/``asyncio.run``/
  ``IsolatedAsyncioTestCase``, which tidal's installed policy answers.

Every module is loaded through :mod:`_facade`, so in all three kinds the
tests' ``asyncio.X`` is tidal's X where tidal has one.
"""

from __future__ import annotations

import os
import sys
import types
import unittest
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType


def _tidal() -> ModuleType:
    # Imported on use: run.py lists modules without importing tidal.
    import tidal

    return tidal

PACKAGE = "test.test_asyncio"

#: Modules never loaded (whole-module exclusions live in exclusions.toml;
#: these are not test modules at all).
HELPERS = ("utils", "functional", "echo", "echo2", "echo3", "__init__", "__main__")


def all_modules() -> list[str]:
    """Every test module of this interpreter's test_asyncio, sorted."""
    import test.test_asyncio as pkg

    names = []
    for entry in os.listdir(os.path.dirname(pkg.__file__ or "")):
        if entry.startswith("test_") and entry.endswith(".py"):
            names.append(entry[:-3])
    return sorted(names)


def derive(mod: types.ModuleType, name: str, bases: tuple[type, ...], **attrs: Any) -> type:
    """A test class named *name*, reported as part of *mod*."""
    attrs.setdefault("__module__", mod.__name__)
    attrs.setdefault("__qualname__", name)
    cls = type(name, bases, attrs)
    return cls


def _tidal_loop(self: Any) -> Any:
    return _tidal().new_event_loop()


#: Abstract methods of asyncio's bare BaseEventLoop that BaseEventLoopTests
#: replaces with mocks before running it.
_STUBBED = frozenset({"_process_events", "_write_to_self"})


def _loop_without_stubs() -> Any:
    """A tidal loop that ignores mocks assigned to its _process_events/_write_to_self.

    BaseEventLoopTests builds asyncio's BaseEventLoop, whose _process_events
    and _write_to_self are abstract, so its tests first set them to mocks.
    tidal's loop has working methods under those names (one wakes the loop
    from other threads); the mocks are not needed and would disable them.
    """
    from unittest import mock

    class TidalLoopWithoutStubs(_tidal().EventLoop):  # type: ignore[misc, name-defined]
        def __setattr__(self, name: str, value: Any) -> None:
            if name in _STUBBED and isinstance(value, mock.Mock):
                return
            super().__setattr__(name, value)

    return TidalLoopWithoutStubs()


def _retarget(mod: types.ModuleType, original: str, name: str,
              factory: str = "create_event_loop") -> type:
    """Subclass a per-asyncio-loop class so its loop factory gives tidal's loop."""
    return derive(mod, name, (getattr(mod, original),), **{factory: _tidal_loop})


def _setup_with_tidal_loop(original: type, *, set_current: bool = True) -> Callable[[Any], None]:
    """A setUp that does what *original*'s does, on a tidal loop.

    For classes whose setUp builds ``asyncio.SelectorEventLoop()`` (or a
    mocked ``BaseEventLoop``) inline: run the parents' setUp, then make the
    loop tidal's.
    """

    def setUp(self: Any) -> None:
        super(original, self).setUp()
        self.loop = _tidal().new_event_loop()
        if set_current:
            self.set_event_loop(self.loop)

    return setUp


# -- mixin modules -------------------------------------------------------


def build_test_futures(mod: types.ModuleType) -> list[type]:
    tc = mod.test_utils.TestCase
    future = _tidal().Future

    class TidalSubFuture(future):  # type: ignore[misc, valid-type]
        pass

    return [
        derive(mod, "TidalFutureTests", (mod.BaseFutureTests, tc), cls=future),
        derive(mod, "TidalSubFutureTests", (mod.BaseFutureTests, tc), cls=TidalSubFuture),
        derive(mod, "TidalFutureDoneCallbackTests", (mod.BaseFutureDoneCallbackTests, tc),
               _new_future=lambda self: future(loop=self.loop)),
        derive(mod, "TidalSubFutureDoneCallbackTests", (mod.BaseFutureDoneCallbackTests, tc),
               _new_future=lambda self: TidalSubFuture(loop=self.loop)),
        derive(mod, "TidalFutureInheritanceTests", (mod.BaseFutureInheritanceTests, tc),
               _get_future_cls=lambda self: future),
    ]


def build_test_tasks(mod: types.ModuleType) -> list[type]:
    tc = mod.test_utils.TestCase
    from asyncio import tasks as aio_tasks

    classes = [
        derive(mod, "Tidal_Task_Future_Tests", (mod.BaseTaskTests, mod.SetMethodsTest, tc),
               Task=_tidal().Task, Future=_tidal().Future),
        mod.add_subclass_tests(
            derive(mod, "Tidal_Task_Future_SubclassTests", (mod.BaseTaskTests, tc),
                   Task=_tidal().Task, Future=_tidal().Future)
        ),
        derive(mod, "TidalCurrentLoopTests", (mod.BaseCurrentLoopTests, tc),
               current_task=staticmethod(_tidal().current_task),
               new_task=lambda self, coro: _tidal().Task(coro, loop=self.loop)),
        # The registration functions third-party tasks call are asyncio's;
        # tidal's all_tasks()/current_task() must see what they register.
        derive(mod, "TidalIntrospectionTests", (tc, mod.BaseTaskIntrospectionTests),
               _register_task=staticmethod(aio_tasks._register_task),
               _unregister_task=staticmethod(aio_tasks._unregister_task),
               _enter_task=staticmethod(aio_tasks._enter_task),
               _leave_task=staticmethod(aio_tasks._leave_task)),
    ]
    return classes


def build_test_futures2(mod: types.ModuleType) -> list[type]:
    return [derive(mod, "TidalFutureTests", (mod.FutureTests, unittest.IsolatedAsyncioTestCase),
                   cls=_tidal().Task)]


def build_test_eager_task_factory(mod: types.ModuleType) -> list[type]:
    tc = mod.test_utils.TestCase
    return [
        derive(mod, "TidalEagerTaskFactoryLoopTests", (mod.EagerTaskFactoryLoopTests, tc),
               Task=_tidal().Task),
    ]


# -- loop modules --------------------------------------------------------


def build_test_events(mod: types.ModuleType) -> list[type]:
    import asyncio.events as aio_events

    # UnixEventLoopTestsMixin only adds a SafeChildWatcher, an asyncio
    # implementation detail tidal does not use (it watches children itself).
    return [
        derive(mod, "TidalEventLoopTests",
               (mod.EventLoopTestsMixin, mod.SubprocessTestsMixin, mod.test_utils.TestCase),
               create_event_loop=_tidal_loop),
        # The running-loop slot is asyncio's (tidal shares it); the public
        # functions are tidal's.
        derive(mod, "TidalGetEventLoopTests", (mod.GetEventLoopTestsMixin, unittest.TestCase),
               _get_running_loop_impl=aio_events._get_running_loop,
               _set_running_loop_impl=aio_events._set_running_loop,
               get_running_loop_impl=_tidal().get_running_loop,
               get_event_loop_impl=_tidal().get_event_loop),
    ]


def build_test_sock_lowlevel(mod: types.ModuleType) -> list[type]:
    return [_retarget(mod, "SelectEventLoopTests", "TidalEventLoopTests")]


def build_test_sendfile(mod: types.ModuleType) -> list[type]:
    return [_retarget(mod, "SelectEventLoopTests", "TidalEventLoopTests")]


def build_test_server(mod: types.ModuleType) -> list[type]:
    return [_retarget(mod, "SelectorStartServerTests", "TidalStartServerTests", "new_loop")]


def build_test_sslproto(mod: types.ModuleType) -> list[type]:
    return [_retarget(mod, "SelectorStartTLSTests", "TidalStartTLSTests", "new_loop")]


def build_test_buffered_proto(mod: types.ModuleType) -> list[type]:
    return [_retarget(mod, "BufferedProtocolSelectorTests", "TidalBufferedProtocolTests",
                      "new_loop")]


def build_test_subprocess(mod: types.ModuleType) -> list[type]:
    tc = mod.test_utils.TestCase

    def setUp(self: Any) -> None:
        tc.setUp(self)
        self.loop = _tidal().new_event_loop()
        self.set_event_loop(self.loop)

    return [derive(mod, "TidalSubprocessTests", (mod.SubprocessMixin, tc), setUp=setUp)]


def build_test_unix_events(mod: types.ModuleType) -> list[type]:
    sock = mod.SelectorEventLoopUnixSocketTests
    return [
        derive(mod, "TidalUnixSocketTests", (sock,), setUp=_setup_with_tidal_loop(sock)),
    ]


def build_test_base_events(mod: types.ModuleType) -> list[type]:
    sel = mod.BaseEventLoopWithSelectorTests
    base = mod.BaseEventLoopTests
    sendfile = mod.BaseLoopSockSendfileTests

    def base_setup(self: Any) -> None:
        super(base, self).setUp()
        self.loop = _loop_without_stubs()
        self.set_event_loop(self.loop)

    def sendfile_setup(self: Any) -> None:
        # The original's steps, with tidal's loop for BaseSelectorEventLoop().
        self.loop = _tidal().new_event_loop()
        self.set_event_loop(self.loop)
        self.file = open(mod.os_helper.TESTFN, "rb")
        self.addCleanup(self.file.close)
        super(sendfile, self).setUp()

    return [
        derive(mod, "TidalLoopWithSelectorTests", (sel,), setUp=_setup_with_tidal_loop(sel)),
        # BaseEventLoopTests builds asyncio's BaseEventLoop with a mocked
        # selector; most of its tests are about public loop behaviour.
        derive(mod, "TidalBaseEventLoopTests", (base,), setUp=base_setup),
        # BaseLoopSockSendfileTests builds asyncio's BaseSelectorEventLoop
        # (no native sendfile): its argument checks and fallback results hold
        # for any loop.
        derive(mod, "TidalLoopSockSendfileTests", (sendfile,), setUp=sendfile_setup),
    ]


def build_test_pep492(mod: types.ModuleType) -> list[type]:
    out = []
    for name in ("LockTests", "StreamReaderTests", "CoroutineTests"):
        original = getattr(mod, name)
        out.append(derive(mod, "Tidal" + name, (original,),
                          setUp=_setup_with_tidal_loop(mod.BaseTest)))
    return out


def build_test_runners(mod: types.ModuleType) -> list[type]:
    # BaseTest.new_loop builds asyncio's BaseEventLoop with a mocked selector
    # and a stub shutdown_asyncgens() that sets a flag the tests check.  The
    # tidal version keeps the stub and the flag, on a real tidal loop.
    def new_loop(self: Any) -> Any:
        loop = _tidal().new_event_loop()
        loop.shutdown_ag_run = False

        async def shutdown_asyncgens() -> None:
            loop.shutdown_ag_run = True

        loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    return [
        derive(mod, "TidalRunTests", (mod.RunTests,), new_loop=new_loop),
        derive(mod, "TidalRunnerTests", (mod.RunnerTests,), new_loop=new_loop),
    ]


BUILDERS: dict[str, Callable[[types.ModuleType], list[type]]] = {
    name[len("build_"):]: fn
    for name, fn in list(globals().items())
    if name.startswith("build_test_") and callable(fn)
}


def module_test_classes(mod: types.ModuleType) -> list[type]:
    """Concrete TestCase classes defined by *mod*, in definition order."""
    out = []
    for obj in vars(mod).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, unittest.TestCase)
            and obj.__module__ == mod.__name__
        ):
            out.append(obj)
    return out


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))

"""What every program of the task-tree fuzzer starts with (tests/api/fuzz_support.py).

fuzz_support.script() puts this file's text in front of a generated
program's coroutines and main(), so a printed program runs on its own.
"""

import asyncio

aio = asyncio  # the module the program is written against; run() sets it
T = {}  # tasks by name
E = []  # events
Q = []  # queues
L = []  # locks and semaphores
F = []  # bare futures
TRACE = []  # (turn, task, label, value, cancelling())
REPORTS = []  # what the loop's exception handler received
TURN = [0, True]


def key(t):
    """A task's name, or its coroutine's name for an auto-named (Task-N) task.

    asyncio 3.13.0 names a task its factory made without a name 'None'
    (create_task calls set_name(None)); that name is not compared either."""
    name = t.get_name()
    return t.get_coro().__name__ if name.startswith('Task-') or name == 'None' else name


def show(v):
    if isinstance(v, BaseException):
        s = repr(v)
        if v.__cause__ is not None:
            return f'{s} from {show(v.__cause__)}'
        if v.__context__ is not None and not v.__suppress_context__:
            return f'{s} {{during {show(v.__context__)}}}'  # as a traceback chains them
        return s
    if isinstance(v, (set, frozenset)):  # asyncio.wait(): sorted, with outcomes
        return '{' + ', '.join(sorted(map(show_fut, v))) + '}'
    if isinstance(v, list):
        return '[' + ', '.join(map(show, v)) + ']'
    if isinstance(v, tuple):
        return '(' + ', '.join(map(show, v)) + ')'
    if aio.isfuture(v):
        return show_fut(v)
    return repr(v)


def show_fut(f):
    if hasattr(f, 'get_name'):
        name = key(f)
    else:
        name = next((f'F{i}' for i, g in enumerate(F) if g is f), 'future')
    if not f.done():
        return name
    if f.cancelled():
        return name + '=cancelled'
    e = f.exception()
    return name + '=' + (show(f.result()) if e is None else show(e))


def log(label, value):
    t = aio.current_task()
    TRACE.append((TURN[0], key(t), label, show(value), t.cancelling()))


def on_error(loop, ctx):
    fut = ctx.get('future', ctx.get('task'))
    REPORTS.append((str(ctx.get('message')), show(ctx.get('exception')),
                    '-' if fut is None else show_fut(fut)))


async def completed(xs, timeout):
    """The outcomes as_completed(xs) yields, sorted.  Inputs already done are
    registered in set order, so only the sorted list is deterministic, and a
    CancelledError (ours or an input's: which comes first is set order too)
    ends the loop as a bare CancelledError().  The inputs done by then are
    retrieved, so 'never retrieved' reports do not depend on that order."""
    acc = []
    try:
        for f in aio.as_completed(xs, timeout=timeout):
            try:
                acc.append(show(await f))
            except Exception as e:
                acc.append(show(e))
    except aio.CancelledError:
        raise aio.CancelledError() from None
    finally:
        for x in xs:
            if x.done() and not x.cancelled():
                x.exception()
    return sorted(acc)


async def waited(xs, timeout):
    """asyncio.wait(xs, return_when=FIRST_EXCEPTION): its callbacks retrieve
    the exception of each input already done except the one they see last,
    in set order; what is done by the end is retrieved here, so 'never
    retrieved' reports do not depend on that order."""
    try:
        return await aio.wait(xs, return_when=aio.FIRST_EXCEPTION, timeout=timeout)
    finally:
        for x in xs:
            if x.done() and not x.cancelled():
                x.exception()


def keyed_tasks():
    """A task factory whose tasks hash in creation order.  asyncio's TaskGroup
    cancels its children in set order, which with id() hashes differs from
    run to run; only programs with a TaskGroup of two or more children use it."""
    count = iter(range(1 << 30))

    class KeyedTask(type(aio.current_task())):
        def __init__(self, *args, **kwargs):
            self.fuzz_key = next(count)
            super().__init__(*args, **kwargs)

        def __hash__(self):
            return self.fuzz_key

    return lambda loop, coro, **kwargs: KeyedTask(coro, loop=loop, **kwargs)


def tick(loop):
    if TURN[1]:
        TURN[0] += 1
        loop.call_soon(tick, loop)


async def settle():
    """Let the tasks finish, then cancel what is left in rounds, in name order."""
    me = aio.current_task()
    for i in range(200):
        rest = sorted((t for t in aio.all_tasks() if t is not me), key=key)
        if not rest:
            break
        if i >= 20 and i % 4 == 0:
            if i == 20:
                log('settle', [key(t) for t in rest])
            for t in rest:
                t.cancel()
        try:
            await aio.sleep(0)
        except BaseException as e:
            log('settle', e)
    for name, t in T.items():
        state = 'cancelled' if t.cancelled() else 'done' if t.done() else 'pending'
        log('final', (name, state, t.cancelling()))
    TURN[1] = False
    T.clear(), E.clear(), Q.clear(), F.clear(), L.clear()


def run(mode):
    """a: tidal's API on tidal; b: asyncio's API on tidal's loop; c: asyncio."""
    global aio
    import gc
    import warnings

    import tidal

    aio = tidal if mode == 'a' else asyncio
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            if mode == 'a':
                tidal.run(main())  # noqa: F821 (the program defines main)
            elif mode == 'b':
                with asyncio.Runner(loop_factory=tidal.new_event_loop) as runner:
                    runner.run(main())  # noqa: F821
                del runner
            else:
                asyncio.run(main())  # noqa: F821
        except (Exception, asyncio.CancelledError) as e:
            TRACE.append((1 << 30, 'run', 'run', show(e), 0))
        gc.collect()
    REPORTS.extend(('warning', f'{w.category.__name__}: {w.message}', '-') for w in caught)

"""A loop running forever in another thread, fed from the main thread.

The tutorial pattern: ``new_event_loop()`` + ``Thread(target=loop.run_forever)``,
then ``call_soon_threadsafe`` for plain callbacks and ``run_coroutine_threadsafe``
for coroutines, whose concurrent future can be waited on or cancelled.
"""

import threading

import tidal as asyncio


async def compute(x: int) -> int:
    """Pretend to work, then square *x*."""
    await asyncio.sleep(0.01)
    return x * x


async def forever() -> None:
    """A coroutine that would never finish on its own."""
    await asyncio.sleep(3600)


async def shutdown() -> None:
    """Cancel what is still running on the loop and wait for it to finish."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def main() -> None:
    """Start the loop thread, feed it, cancel something, stop it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tidal-loop", daemon=True)
    thread.start()

    done = threading.Event()
    loop.call_soon_threadsafe(lambda: (print("callback ran in", threading.current_thread().name),
                                       done.set()))
    done.wait(5)

    futures = [asyncio.run_coroutine_threadsafe(compute(i), loop) for i in range(5)]
    print("squares:", [f.result(timeout=5) for f in futures])

    slow = asyncio.run_coroutine_threadsafe(forever(), loop)
    slow.cancel()
    try:
        slow.result(timeout=5)
    except Exception as exc:  # concurrent.futures.CancelledError
        print("cancelled:", type(exc).__name__)

    # The concurrent future is cancelled at once; the task it mirrors finishes
    # on the loop a moment later: let it, before stopping the loop.
    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    print("loop closed:", loop.is_closed())


if __name__ == "__main__":
    main()

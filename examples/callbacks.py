"""Done callbacks on futures and tasks, and the order they run in."""

import tidal as asyncio


async def main() -> None:
    """Attach callbacks to a future and a task."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fut.add_done_callback(lambda f: print("first callback sees", f.result()))
    fut.add_done_callback(lambda f: print("second callback, registration order"))
    loop.call_later(0.01, fut.set_result, "the result")
    await fut
    await asyncio.sleep(0)  # let the callbacks run

    async def child() -> int:
        await asyncio.sleep(0.01)
        return 7

    task = asyncio.create_task(child(), name="child")
    task.add_done_callback(lambda t: print(f"{t.get_name()} finished with {t.result()}"))
    await task
    await asyncio.sleep(0)


if __name__ == "__main__":
    asyncio.run(main())

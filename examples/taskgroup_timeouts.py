"""TaskGroup and timeouts: structured concurrency with deadlines."""

import tidal as asyncio


async def worker(n: int) -> int:
    """Take n hundredths of a second, fail on 3."""
    await asyncio.sleep(n / 100)
    if n == 3:
        raise RuntimeError("worker 3 broke")
    return n


async def main() -> None:
    """A group that succeeds, one that fails, and a timeout."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(worker(n)) for n in (1, 2)]
    print("all done:", [t.result() for t in tasks])

    try:
        async with asyncio.TaskGroup() as tg:
            for n in (1, 3, 50):
                tg.create_task(worker(n))
    except* RuntimeError as group:
        print("group failed:", [str(e) for e in group.exceptions])

    try:
        async with asyncio.timeout(0.02):
            await worker(50)
    except TimeoutError:
        print("timed out after 0.02 s")


if __name__ == "__main__":
    asyncio.run(main())

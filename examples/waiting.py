"""gather, wait and as_completed: the three ways to wait for several things."""

import tidal as asyncio


async def job(name: str, delay: float, fail: bool = False) -> str:
    """Finish after *delay* seconds, or fail."""
    await asyncio.sleep(delay)
    if fail:
        raise ValueError(f"{name} failed")
    return name


async def main() -> None:
    """Show each waiting style."""
    print("gather:", await asyncio.gather(job("a", 0.02), job("b", 0.01)))
    print("gather, exceptions returned:",
          await asyncio.gather(job("ok", 0.01), job("bad", 0.01, fail=True),
                               return_exceptions=True))

    tasks = {asyncio.create_task(job(n, d)) for n, d in (("x", 0.01), ("y", 0.05))}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    print("wait FIRST_COMPLETED:", [t.result() for t in done], "pending:", len(pending))
    for t in pending:
        t.cancel()

    for next_done in asyncio.as_completed([job("slow", 0.03), job("fast", 0.01)]):
        print("as_completed:", await next_done)

    try:
        await asyncio.wait_for(job("late", 1), timeout=0.01)
    except TimeoutError:
        print("wait_for: timed out")


if __name__ == "__main__":
    asyncio.run(main())

"""The first tutorial program: three tasks sleeping 1, 2 and 3 s finish together in 3 s.

Written against asyncio's API; ``import tidal as asyncio`` is the only change.
Set TIDAL_EXAMPLE_SCALE=0.01 to make the seconds hundredths (the tests do).
"""

import os
import time

import tidal as asyncio

SCALE = float(os.environ.get("TIDAL_EXAMPLE_SCALE", "1"))


async def say_after(delay: float, what: str) -> str:
    """Sleep *delay* (scaled) seconds, then print and return *what*."""
    await asyncio.sleep(delay * SCALE)
    print(what)
    return what


async def main() -> None:
    """Run three sleepers concurrently and time them."""
    started = time.monotonic()
    results = await asyncio.gather(say_after(1, "one"), say_after(2, "two"), say_after(3, "three"))
    elapsed = (time.monotonic() - started) / SCALE
    print(f"{results} in {elapsed:.1f} s")


asyncio.run(main())

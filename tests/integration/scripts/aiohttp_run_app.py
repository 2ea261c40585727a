"""An aiohttp server as people write it: web.run_app() until SIGINT or SIGTERM.

Run by test_scripts.py under ``python -m tidal run`` and, as the oracle,
``python``: it prints its URL, serves until signalled, then reports on the
graceful shutdown.
"""

import asyncio
import sys

from aiohttp import web


async def hello(request):
    loop = type(asyncio.get_running_loop()).__module__
    return web.Response(text=f"hello from {loop.split('.')[0]}")


async def on_cleanup(app):
    print("cleanup ran", flush=True)


def main():
    app = web.Application()
    app.router.add_get("/", hello)
    app.on_cleanup.append(on_cleanup)
    web.run_app(app, host="127.0.0.1", port=0, print=lambda msg: print(msg, flush=True),
                handle_signals=True, shutdown_timeout=1)
    print("run_app returned", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

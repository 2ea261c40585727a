"""``python -m tidal bench``: tidal against asyncio, uvloop and rloop.

Each workload is written once against an API module (``asyncio`` or
``tidal``) and a loop factory, so the same code measures every runtime.
Every measurement runs in a fresh interpreter (:mod:`.worker`), the runtimes
are interleaved and repeated (:mod:`.runner`), and :mod:`.report` prints the
medians, their spread and each runtime's speed relative to asyncio.
"""

"""tidal's core: loop, handles, futures, tasks and the poller.

Everything else in tidal is built on what this package exports; the one way a
task blocks is awaiting a :class:`~tidal._core.futures.Future`.
"""

"""tidal's I/O layer: sockets, transports, streams, TLS, pipes, subprocesses, signals.

Each loop mixin here is a subclass of the core ``BaseEventLoop`` that adds one
family of loop methods; ``tidal._loop.EventLoop`` composes them.
"""

"""The high-level API: everything here is built on the core's public pieces."""

"""Fixtures for the I/O tests."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import pytest


@pytest.fixture
def fd_count() -> Callable[[], int]:
    """Count this process's open file descriptors (after a garbage collection)."""

    def count() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    return count

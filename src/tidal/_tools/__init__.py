"""Command-line tools shipped with tidal: ``python -m tidal run`` and ``bench``."""

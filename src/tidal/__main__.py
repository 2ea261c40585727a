"""``python -m tidal``: run a script on tidal, benchmark it, or print the version.

``tidal run script.py [args]`` runs an unchanged asyncio program with tidal as
asyncio's event loop; ``tidal bench`` compares tidal with asyncio, uvloop and
rloop.  See ``python -m tidal --help``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tidal`` and of the ``tidal`` console script."""
    # Imported here so that ``import tidal.__main__`` stays cheap.
    from tidal._tools.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())

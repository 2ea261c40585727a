"""asyncio.subprocess on tidal: ``PIPE``, ``STDOUT``, ``DEVNULL``, ``Process``...

So that code written as ``asyncio.subprocess.PIPE`` keeps working when
``tidal`` stands in for ``asyncio``.  As in asyncio, only the two creation
functions are in ``__all__``; the rest are plain module attributes.
"""

from __future__ import annotations

from tidal._io.process import DEVNULL as DEVNULL
from tidal._io.process import PIPE as PIPE
from tidal._io.process import STDOUT as STDOUT
from tidal._io.process import Process as Process
from tidal._io.process import SubprocessStreamProtocol as SubprocessStreamProtocol
from tidal._io.process import create_subprocess_exec, create_subprocess_shell

__all__ = ("create_subprocess_exec", "create_subprocess_shell")

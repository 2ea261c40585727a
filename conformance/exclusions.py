"""Read exclusions.toml: what does not apply to tidal, and why.

Each key names a module (``test_x``), a class (``test_x.Class``) or a test
(``test_x.Class.test_y``); shell-style wildcards are allowed in each part.
The value is the reason, or a table ``{reason = "...", python = ["3.11"]}``
when the entry applies to some Python versions only.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import tomllib
from dataclasses import dataclass, field

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exclusions.toml")


@dataclass
class Exclusions:
    """Exclusion entries that apply to the running Python."""

    modules: dict[str, str] = field(default_factory=dict)
    classes: dict[tuple[str, str], str] = field(default_factory=dict)
    tests: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def module_reason(self, module: str) -> str | None:
        for pattern, reason in self.modules.items():
            if fnmatch.fnmatchcase(module, pattern):
                return reason
        return None

    def reason(self, module: str, cls: str, test: str) -> str | None:
        """Why ``module.cls.test`` is excluded, or None if it applies."""
        found = self.module_reason(module)
        if found is not None:
            return found
        for (m, c), reason in self.classes.items():
            if fnmatch.fnmatchcase(module, m) and fnmatch.fnmatchcase(cls, c):
                return reason
        for (m, c, t), reason in self.tests.items():
            if (fnmatch.fnmatchcase(module, m) and fnmatch.fnmatchcase(cls, c)
                    and fnmatch.fnmatchcase(test, t)):
                return reason
        return None


def load(path: str = PATH) -> Exclusions:
    """Parse *path*, keeping the entries for this Python version."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    out = Exclusions()
    for section in data.values():
        for key, value in section.items():
            if isinstance(value, dict):
                versions = value.get("python")
                if versions is not None and version not in versions:
                    continue
                reason = str(value["reason"])
            else:
                reason = str(value)
            parts = key.split(".")
            if len(parts) == 1:
                out.modules[parts[0]] = reason
            elif len(parts) == 2:
                out.classes[(parts[0], parts[1])] = reason
            elif len(parts) == 3:
                out.tests[(parts[0], parts[1], parts[2])] = reason
            else:
                raise ValueError(f"exclusions.toml: bad key {key!r}")
    return out

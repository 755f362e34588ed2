"""Link the generated C for the board's core, so a real linker proves the placement."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from hostgen.boards import Board
from hostgen.errors import HostgenError

ARM_FLAGS = ["-mthumb", "-mfloat-abi=hard", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
             "-ffunction-sections", "-fdata-sections", "-nostdlib", "-nostartfiles"]


def arm_gcc() -> str:
    compiler = shutil.which("arm-none-eabi-gcc")
    if compiler is None:
        raise HostgenError(
            "arm-none-eabi-gcc not found; install it with 'make setup' "
            "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        )
    return compiler


def link_command(board: Board, build_dir: Path, output: Path, extra_sources: tuple[Path, ...] = ()) -> list[str]:
    """The compile-and-link command for the placement image (tests add sources to it)."""
    return [
        arm_gcc(), f"-mcpu={board['core']['cpu']}", *ARM_FLAGS,
        "-I", str(build_dir), "-L", str(build_dir), "-T", "placement.ld",
        "-Wl,--gc-sections", f"-Wl,-Map={output.with_suffix('.map')}",
        str(build_dir / "model_data.c"), str(build_dir / "placement_main.c"), *map(str, extra_sources),
        "-o", str(output),
    ]


def link_placement(board: Board, build_dir: Path) -> Path:
    """Compile model_data.c and the placement harness and link them with the generated scripts."""
    if board.family != "stm32":
        raise HostgenError(
            f"board {board.name} is {board.family}: its linker fragment (model_placement.lf) is linked by "
            "ESP-IDF's build; 'cross' links STM32 boards only"
        )
    manifest = build_dir / "build.json"
    if not manifest.is_file():
        raise HostgenError(f"no generated build in {build_dir}; run 'hostgen gen --board {board.name}' first")
    if json.loads(manifest.read_text())["size"]["board"] != board.name:
        raise HostgenError(f"{build_dir} was generated for another board; run 'hostgen gen --board {board.name}'")
    elf = build_dir / "placement.elf"
    partial = build_dir / "placement.partial.elf"
    result = subprocess.run(link_command(board, build_dir, partial), capture_output=True, text=True)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        detail = next((l for l in result.stderr.splitlines() if "faultline:" in l or "error" in l), result.stderr.strip())
        raise HostgenError(f"link for {board.name} failed: {detail.strip()}")
    partial.rename(elf)
    partial.with_suffix(".map").rename(elf.with_suffix(".map"))
    return elf

"""STM32 (GNU ld): the chip's MEMORY, the model and arena sections with link-time ASSERTs, and a
minimal image that `hostgen cross` links with arm-none-eabi-gcc so a real linker proves the placement."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hostgen.codegen.families import Family
from hostgen.errors import HostgenError
from hostgen.util.atomic import atomic_path
from hostgen.util.tools import arm_gcc

ARM_FLAGS = ["-mthumb", "-mfloat-abi=hard", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
             "-ffunction-sections", "-fdata-sections", "-nostdlib", "-nostartfiles"]


def link_command(board, build_dir: Path, output: Path, extra_sources: tuple[Path, ...] = ()) -> list[str]:
    """The compile-and-link command for the placement image (tests add sources to it)."""
    return [
        arm_gcc(), f"-mcpu={board['core']['cpu']}", *ARM_FLAGS,
        "-I", str(build_dir), "-L", str(build_dir), "-T", "placement.ld",
        "-Wl,--gc-sections", f"-Wl,-Map={output.with_suffix('.map')}",
        str(build_dir / "model_data.c"), str(build_dir / "placement_main.c"), *map(str, extra_sources),
        "-o", str(output),
    ]


def stock_heap_bytes(board) -> int:
    """A stock build's GC heap runs from _ebss to _sstack: the RAM region less .data/.bss and the stack.

    (The board's heap_bytes is less: what tier 1 keeps when a TFLM build's static arena takes the rest.)
    """
    micropython = board["micropython"]
    return board.arena_region.size_bytes - micropython["static_ram_bytes"] - micropython["stack_bytes"]


def link(board, build_dir: Path) -> Path:
    """Compile model_data.c and the placement harness and link them with the generated scripts."""
    from hostgen.codegen.build import require_build

    require_build(build_dir, board)
    elf = build_dir / "placement.elf"
    with atomic_path(elf) as partial, atomic_path(elf.with_suffix(".map")) as partial_map:
        result = subprocess.run(link_command(board, build_dir, partial), capture_output=True, text=True)
        if result.returncode != 0:
            partial.with_suffix(".map").unlink(missing_ok=True)
            detail = next((line for line in result.stderr.splitlines() if "faultline:" in line or "error" in line), result.stderr.strip())
            raise HostgenError(f"link for {board.name} failed: {detail.strip()}")
        partial.with_suffix(".map").replace(partial_map)
    return elf


FAMILY = Family(
    name="stm32",
    templates={
        "memory.ld": "linker/stm32/memory.ld.j2",
        "model_placement.ld": "linker/stm32/model_placement.ld.j2",
        "placement.ld": "linker/stm32/placement.ld.j2",
        "placement_main.c": "linker/stm32/placement_main.c.j2",
    },
    timer_api="pyb",
    link=link,
    stock_heap_bytes=stock_heap_bytes,
)

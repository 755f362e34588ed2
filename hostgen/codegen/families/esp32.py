"""ESP32 and ESP32-S3: ESP-IDF linker fragment (model in flash_rodata, arena in dram0_bss) and budget ASSERTs."""

from __future__ import annotations

from pathlib import Path

from hostgen.codegen.families import Family
from hostgen.errors import HostgenError


def link(board, build_dir: Path) -> Path:
    raise HostgenError(
        f"board {board.name} is esp32: its linker fragment (model_placement.lf) is linked by "
        "ESP-IDF's build; 'cross' links STM32 boards only"
    )


FAMILY = Family(
    name="esp32",
    templates={
        "model_placement.lf": "linker/esp32/model_placement.lf.j2",
        "model_budget.ld": "linker/esp32/model_budget.ld.j2",
    },
    timer_api="machine",
    link=link,
    stock_heap_bytes=lambda board: board["micropython"]["heap_bytes"],  # the port sizes its GC heap from the IDF heap
)

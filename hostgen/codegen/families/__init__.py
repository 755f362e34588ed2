"""Board families, one entry each: the files a build adds for the family, its link step, its timer API.

A family is a module in this package with a FAMILY entry, plus its linker templates in
linker/<family>/. Nothing else in hostgen names a family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Family:
    name: str
    templates: dict[str, str]  # generated file -> template (`linker/<family>/...`)
    timer_api: str  # what paces sampling in the firmware: "pyb" (pyb.Timer) or "machine" (machine.Timer)
    link: Callable[[object, Path], Path]  # `hostgen cross`: link the generated C for the board's core
    stock_heap_bytes: Callable[[object], int]  # the GC heap of a stock MicroPython build, where tier 2's engine module runs


def _registry() -> dict[str, Family]:
    from hostgen.codegen.families import esp32, stm32

    return {family.name: family for family in (stm32.FAMILY, esp32.FAMILY)}


def family_names() -> tuple[str, ...]:
    return tuple(_registry())


def family_of(board) -> Family:
    return _registry()[board.family]

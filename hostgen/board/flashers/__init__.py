"""Stock-MicroPython flash methods, one entry each (its module in this package): which image it
takes, and the command lines that write it. A board file names its method in `flashing.method`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FLASH_BAUD = 460_800


@dataclass(frozen=True)
class Flasher:
    name: str
    accepts: Callable[[bytes, Path], bool]  # (the image's first 16 bytes, its path) -> is it this method's kind
    image_kind: str  # what `accepts` wants, for the error message
    commands: Callable[[object, Path, str | None], list[list[str]]]  # (board, image, port) -> command lines


def _registry() -> dict[str, Flasher]:
    from hostgen.board.flashers import dfu, esptool, stlink

    return {flasher.name: flasher for flasher in (dfu.FLASHER, esptool.FLASHER, stlink.FLASHER)}


def flasher_names() -> tuple[str, ...]:
    return tuple(_registry())


def flasher_of(board) -> Flasher:
    return _registry()[board["flashing"]["method"]]

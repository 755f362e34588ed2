"""Nucleo boards' on-board ST-LINK: st-flash writes an Intel hex image, or a raw .bin at the board's offset."""

from __future__ import annotations

from pathlib import Path

from hostgen.board.flashers import Flasher


def commands(board, image: Path, port: str | None) -> list[list[str]]:
    if image.suffix == ".hex":
        return [["st-flash", "--reset", "--format", "ihex", "write", str(image)]]
    return [["st-flash", "--reset", "write", str(image), f"0x{board['flashing']['firmware_offset']:x}"]]


FLASHER = Flasher(
    name="stlink",
    accepts=lambda head, image: head[:1] == b":" or image.suffix == ".bin",
    image_kind="an Intel .hex (or a raw .bin) image",
    commands=commands,
)

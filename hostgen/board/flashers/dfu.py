"""The pyboard's USB DFU bootloader: dfu-util writes a DfuSe image to the board's USB id."""

from __future__ import annotations

from pathlib import Path

from hostgen.board.flashers import Flasher


def commands(board, image: Path, port: str | None) -> list[list[str]]:
    return [["dfu-util", "-a", "0", "-d", board["flashing"]["usb_ids"][0], "-D", str(image)]]


FLASHER = Flasher(
    name="dfu",
    accepts=lambda head, image: head[:5] == b"DfuSe",
    image_kind="a DfuSe .dfu image",
    commands=commands,
)

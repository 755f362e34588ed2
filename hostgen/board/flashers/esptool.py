"""ESP32 boards over their USB-UART: esptool erases the flash, then writes the image at the board's offset."""

from __future__ import annotations

from pathlib import Path

from hostgen.board.flashers import FLASH_BAUD, Flasher
from hostgen.errors import HostgenError


def commands(board, image: Path, port: str | None) -> list[list[str]]:
    if port is None:
        raise HostgenError(f"esptool needs the board's serial port: give PORT= (the {board.name}'s USB-UART)")
    flashing = board["flashing"]
    common = ["esptool", "--chip", flashing["chip"], "--port", port, "--baud", str(FLASH_BAUD)]
    return [common + ["erase-flash"], common + ["write-flash", f"0x{flashing['firmware_offset']:x}", str(image)]]


FLASHER = Flasher(
    name="esptool",
    accepts=lambda head, image: head[:1] == b"\xe9",
    image_kind="an ESP32 .bin image (first byte 0xE9), e.g. from micropython.org/download",
    commands=commands,
)

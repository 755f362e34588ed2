"""Boards as data: load `boards/<name>.toml` and check it against the schema.

Every key is required and no other key is allowed: a board file that is wrong
stops the run with the file and the key named, instead of a default that nobody
chose. Memory figures carry their unit in the key (`_bytes`, `_hz`, `_baud`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hostgen.config.toml import check_table, read_toml
from hostgen.errors import HostgenError
from hostgen.paths import BOARDS_DIR

USB_ID = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")
BOARD_NAME = re.compile(r"^[a-z0-9_]+$")

# section -> key -> expected type. `list[str]` / `list[int]` are lists of that type.
SCHEMA: dict[str, dict[str, str]] = {
    "": {"name": "str", "title": "str", "family": "str", "mcu": "str"},
    "core": {
        "cpu": "str",
        "mpy_cross_arch": "str",
        "clock_hz": "int",
        "cache_line_bytes": "int",
    },
    "flash": {
        "origin": "int",
        "size_bytes": "int",
        "firmware_bytes": "int",
        "model_origin": "int",
        "model_size_bytes": "int",
    },
    "micropython": {
        "board": "str",
        "static_ram_bytes": "int",
        "stack_bytes": "int",
        "heap_bytes": "int",
    },
    "budget": {"arena_regions": "list[str]", "fraction": "number", "basis": "str"},
    "flashing": {
        "method": "str",
        "chip": "str",
        "firmware_offset": "int",
        "firmware_suffix": "str",
        "usb_ids": "list[str]",
    },
    "repl": {"baud": "int", "usb_ids": "list[str]"},
    "io": {
        "adc_pins": "list[str]",
        "timer_id": "int",
        "safety_pin": "str",
        "gateway_uart": "int",
        "gateway_tx_pin": "str",
        "gateway_rx_pin": "str",
        "gateway_baud": "int",
    },
}
ADDRESS_SPACE = 2**32  # every board here is a 32-bit MCU
RANGES = {  # section.key: (lowest, highest, what to give)
    "core.clock_hz": (1_000_000, 1_000_000_000, "the CPU clock in Hz, 1 MHz to 1 GHz"),
    "core.cache_line_bytes": (0, 256, "0 (no data cache) or a power of two up to 256"),
    "repl.baud": (300, 10_000_000, "a baud rate from 300 to 10000000"),
    "io.gateway_baud": (300, 10_000_000, "a baud rate from 300 to 10000000"),
}
SRAM_REGION_SCHEMA = {"name": "str", "origin": "int", "size_bytes": "int", "use": "str"}


@dataclass(frozen=True)
class SramRegion:
    name: str
    origin: int
    size_bytes: int
    use: str


@dataclass(frozen=True)
class Board:
    """A validated board file. `raw` keeps the file's tables for templates."""

    name: str
    path: Path
    raw: dict
    sram: tuple[SramRegion, ...]

    def __getitem__(self, section: str) -> dict:
        return self.raw[section]

    @property
    def family(self) -> str:
        return self.raw["family"]

    @property
    def alignment_bytes(self) -> int:
        """Model array alignment: TFLM's 16 bytes, or the cache line where larger."""
        return max(16, self.raw["core"]["cache_line_bytes"])

    @property
    def arena_region(self) -> SramRegion:
        """The contiguous RAM span the arena is placed in (the budget regions joined)."""
        chosen = self.raw["budget"]["arena_regions"]
        parts = sorted((r for r in self.sram if r.name in chosen), key=lambda r: r.origin)
        return SramRegion(
            name="_".join(r.name for r in parts),
            origin=parts[0].origin,
            size_bytes=sum(r.size_bytes for r in parts),
            use=" + ".join(r.use for r in parts),
        )

    @property
    def firmware_ram_bytes(self) -> int:
        """What MicroPython itself needs in the arena's region: statics, stack, GC heap."""
        mp = self.raw["micropython"]
        return mp["static_ram_bytes"] + mp["stack_bytes"] + mp["heap_bytes"]

    @property
    def budget_sram_bytes(self) -> int:
        """The SRAM figure the budget fraction applies to: the arena region less the firmware."""
        return self.arena_region.size_bytes - self.firmware_ram_bytes

    def budget_bytes(self, fraction: float | None = None) -> int:
        share = self.raw["budget"]["fraction"] if fraction is None else fraction
        return int(self.budget_sram_bytes * share)


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def load_board(name_or_path: str | Path) -> Board:
    """Load a board by name (`stm32f4`) or by path to a .toml file."""
    text = str(name_or_path)
    if "/" in text or text.endswith(".toml"):
        path = Path(text)
        if not path.is_file():
            raise HostgenError(f"board file {path} not found; give boards/<name>.toml or a board name")
    else:
        path = BOARDS_DIR / f"{text}.toml"
        if not BOARD_NAME.match(text) or not path.is_file():
            known = ", ".join(board_names()) or "none"
            raise HostgenError(f"unknown board '{text}': no boards/{text}.toml; known boards: {known}")
    raw = read_toml(path, "board file")
    _check(path, raw)
    regions = tuple(SramRegion(**entry) for entry in raw["sram"])
    board = Board(name=raw["name"], path=path, raw=raw, sram=regions)
    _check_consistency(path, board)
    return board


def _check(path: Path, raw: dict) -> None:
    check_table(path, "", raw, SCHEMA[""], tuple(name for name in SCHEMA if name) + ("sram",))
    for section, schema in SCHEMA.items():
        if not section:
            continue
        if not isinstance(raw.get(section), dict):
            raise HostgenError(f"{path}: missing table [{section}]")
        check_table(path, section, raw[section], schema)
    regions = raw.get("sram")
    if not isinstance(regions, list) or not regions:
        raise HostgenError(f"{path}: missing [[sram]] regions (at least one)")
    for i, region in enumerate(regions):
        check_table(path, f"sram[{i}]", region, SRAM_REGION_SCHEMA)


def _check_ranges(path: Path, board: Board) -> None:
    """Figures a 32-bit MCU can have: clocks, bauds and cache lines in range, addresses and sizes in 32 bits."""
    raw = board.raw
    for key, (lowest, highest, give) in RANGES.items():
        section, field = key.split(".")
        if not lowest <= raw[section][field] <= highest:
            raise HostgenError(f"{path}: key '{key}' is {raw[section][field]}; give {give}")
    flash = raw["flash"]
    spans = [("flash.origin", "flash.size_bytes", flash["origin"], flash["size_bytes"]),
             ("flash.model_origin", "flash.model_size_bytes", flash["model_origin"], flash["model_size_bytes"])]
    spans += [(f"sram '{r.name}' origin", f"sram '{r.name}' size_bytes", r.origin, r.size_bytes) for r in board.sram]
    for origin_key, size_key, origin, size in spans:
        if size == 0:
            raise HostgenError(f"{path}: {size_key} is 0; give the region's size in bytes (datasheet)")
        if origin + size > ADDRESS_SPACE:
            raise HostgenError(f"{path}: {origin_key} {origin:#x} + {size_key} {size} ends beyond the 32-bit address "
                               f"space ({ADDRESS_SPACE:#x}); check the figures against the datasheet")
    for key in ("flash.firmware_bytes", "flashing.firmware_offset", "micropython.static_ram_bytes", "micropython.stack_bytes",
                "micropython.heap_bytes"):
        section, field = key.split(".")
        if raw[section][field] >= ADDRESS_SPACE:
            raise HostgenError(f"{path}: key '{key}' is {raw[section][field]}; it must fit the 32-bit address space")


def _check_consistency(path: Path, board: Board) -> None:
    raw = board.raw
    if raw["name"] != path.stem:
        raise HostgenError(f"{path}: key 'name' is '{raw['name']}' but the file is {path.name}")
    from hostgen.board.flashers import flasher_names
    from hostgen.codegen.families import family_names

    if raw["family"] not in family_names():
        raise HostgenError(f"{path}: key 'family' is '{raw['family']}'; use one of {', '.join(family_names())}")
    if raw["flashing"]["method"] not in flasher_names():
        raise HostgenError(
            f"{path}: key 'flashing.method' is '{raw['flashing']['method']}'; use one of {', '.join(flasher_names())}"
        )
    for key in ("flashing.usb_ids", "repl.usb_ids"):
        section, field = key.split(".")
        for usb_id in raw[section][field]:
            if not USB_ID.match(usb_id):
                raise HostgenError(f"{path}: key '{key}' has '{usb_id}'; write USB ids as 'vvvv:pppp' in lower-case hex")
    _check_ranges(path, board)
    fraction = raw["budget"]["fraction"]
    if not 0.0 < fraction <= 1.0:
        raise HostgenError(f"{path}: key 'budget.fraction' is {fraction}; it must be in (0, 1]")
    names = [r.name for r in board.sram]
    if len(set(names)) != len(names):
        raise HostgenError(f"{path}: [[sram]] region names repeat: {names}")
    chosen = raw["budget"]["arena_regions"]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise HostgenError(f"{path}: key 'budget.arena_regions' names unknown region(s) {unknown}; regions are {names}")
    parts = sorted((r for r in board.sram if r.name in chosen), key=lambda r: r.origin)
    for low, high in zip(parts, parts[1:]):
        if low.origin + low.size_bytes != high.origin:
            raise HostgenError(
                f"{path}: key 'budget.arena_regions': {low.name} and {high.name} are not contiguous; "
                "the arena needs one contiguous span"
            )
    if board.budget_sram_bytes <= 0:
        raise HostgenError(
            f"{path}: the MicroPython firmware needs {board.firmware_ram_bytes} bytes but the arena "
            f"region has only {board.arena_region.size_bytes}; check [micropython] and budget.arena_regions"
        )
    flash = raw["flash"]
    flash_end = flash["origin"] + flash["size_bytes"]
    model_end = flash["model_origin"] + flash["model_size_bytes"]
    if not (flash["origin"] <= flash["model_origin"] and model_end <= flash_end):
        raise HostgenError(f"{path}: the model flash region [flash.model_origin, +model_size_bytes) lies outside flash")
    line = raw["core"]["cache_line_bytes"]
    if line and line & (line - 1):
        raise HostgenError(f"{path}: key 'core.cache_line_bytes' is {line}; it must be 0 or a power of two")

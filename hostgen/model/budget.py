"""Does a model fit a board? Arena against the SRAM budget, model against the flash region."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hostgen.config.board import Board
from hostgen.errors import HostgenError
from hostgen.model.arena import HOST_NOTE, measure_arena
from hostgen.model.tflite import ModelInfo


@dataclass(frozen=True)
class SizeReport:
    board: str
    model: str
    model_sha256: str
    model_bytes: int
    ops: list[str]
    arena_bytes: int
    arena_probed_bytes: int
    arena_reported_bytes: int
    arena_note: str
    sram_bytes: int
    sram_region_bytes: int
    firmware_ram_bytes: int
    budget_fraction: float
    budget_bytes: int
    fits: bool
    headroom_bytes: int
    model_flash_bytes: int
    fits_flash: bool

    def as_dict(self) -> dict:
        return asdict(self)


def size_report(board: Board, model: ModelInfo, fraction: float | None = None) -> SizeReport:
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise HostgenError(f"--fraction {fraction} is out of range; give a share of SRAM in (0, 1], e.g. 0.7")
    share = board["budget"]["fraction"] if fraction is None else fraction
    arena = measure_arena(model)
    budget = board.budget_bytes(share)
    return SizeReport(
        board=board.name,
        model=str(model.path),
        model_sha256=model.sha256,
        model_bytes=model.size_bytes,
        ops=list(model.ops),
        arena_bytes=arena.reserved_bytes,
        arena_probed_bytes=arena.probed_bytes,
        arena_reported_bytes=arena.reported_bytes,
        arena_note=HOST_NOTE,
        sram_bytes=board.budget_sram_bytes,
        sram_region_bytes=board.arena_region.size_bytes,
        firmware_ram_bytes=board.firmware_ram_bytes,
        budget_fraction=share,
        budget_bytes=budget,
        fits=arena.reserved_bytes <= budget,
        headroom_bytes=budget - arena.reserved_bytes,
        model_flash_bytes=board["flash"]["model_size_bytes"],
        fits_flash=model.size_bytes <= board["flash"]["model_size_bytes"],
    )


def require_fit(report: SizeReport) -> None:
    """Raise the one-line error for whichever limit the model breaks."""
    if not report.fits_flash:
        over = report.model_bytes - report.model_flash_bytes
        raise HostgenError(
            f"model is {report.model_bytes:,} bytes, {over:,} bytes over {report.board}'s "
            f"{report.model_flash_bytes:,}-byte model flash region: use a smaller model or a board with more flash"
        )
    if not report.fits:
        over = -report.headroom_bytes
        raise HostgenError(
            f"tensor arena needs {report.arena_bytes:,} bytes, {over:,} bytes over {report.board}'s budget of "
            f"{report.budget_bytes:,} bytes ({report.budget_fraction:.0%} of {report.sram_bytes:,} bytes of SRAM left "
            "after MicroPython): use a smaller model (fewer filters, a shorter window), per-tensor quantization, "
            "or a board with more SRAM"
        )

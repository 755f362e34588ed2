"""`hostgen size`: the model's measured tensor arena against the board's SRAM budget."""

from __future__ import annotations

import json
import sys

from hostgen.cli import arguments

SUMMARY = "measure the tensor arena and check it against the board's budget"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.model(parser)
    arguments.as_json(parser)


def run(args) -> int:
    from hostgen.config.board import load_board
    from hostgen.model.budget import require_fit, size_report
    from hostgen.model.source import resolve_model

    board = load_board(args.board)
    model, _ = resolve_model(args.model, args.representative, arguments.log)
    report = size_report(board, model, args.fraction)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    sys.stdout.flush()
    require_fit(report)
    return 0


def format_report(report) -> str:
    verdict = f"yes, {report.headroom_bytes:,} bytes to spare" if report.fits else f"NO, {-report.headroom_bytes:,} bytes over"
    flash = "fits" if report.fits_flash else "DOES NOT FIT"
    return "\n".join(
        [
            f"board    {report.board}",
            f"model    {report.model} ({report.model_bytes:,} bytes; ops {', '.join(report.ops)})",
            f"arena    {report.arena_bytes:,} bytes reserved = smallest working {report.arena_probed_bytes:,} "
            f"aligned to 16 + 16 (runtime reports {report.arena_reported_bytes:,})",
            f"         {report.arena_note}",
            f"budget   {report.budget_bytes:,} bytes = {report.budget_fraction:.0%} of {report.sram_bytes:,} bytes "
            f"({report.sram_region_bytes:,} bytes of SRAM less MicroPython's {report.firmware_ram_bytes:,})",
            f"fits     {verdict}",
            f"flash    model {report.model_bytes:,} of {report.model_flash_bytes:,} bytes of model flash: {flash}",
        ]
    )

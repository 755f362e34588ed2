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
    from hostgen.codegen.build import app_config_for
    from hostgen.codegen.tier2_files import compile_tier2
    from hostgen.config.app import load_app
    from hostgen.config.board import load_board
    from hostgen.errors import HostgenError
    from hostgen.model.budget import require_fit, size_report
    from hostgen.model.source import resolve_model

    board = load_board(args.board)
    app = load_app(app_config_for(board, None, arguments.log))
    model, name = resolve_model(args.model, args.representative, app["model"]["input_recipe"], arguments.log)
    report = size_report(board, model, args.fraction)
    try:
        tier2 = compile_tier2(model, name, board, app, "hostgen size").figures
    except HostgenError as exc:  # the model cannot go into this firmware: `gen` says so; here it is one more figure
        tier2 = {"engine": "refused", "reason": str(exc)}
    figures = {**report.as_dict(), "tier2": tier2}
    print(json.dumps(figures, indent=2) if args.json else format_report(report) + "\n" + format_tier2(tier2))
    sys.stdout.flush()
    require_fit(report)
    return 0


def format_tier2(tier2: dict) -> str:
    if tier2["engine"] != "on":
        return f"tier 2   off: {tier2['reason']}"
    return "\n".join([
        f"tier 2   {tier2['module']} ({tier2['kind']}): activations {tier2['engine_activation_bytes']:,} bytes, weights "
        f"{tier2['engine_weight_bytes']:,} bytes, {tier2['engine_macs']:,} MACs, .mpy {tier2['mpy_bytes']:,} bytes ({tier2['mpy_arch']})",
        f"heap     about {tier2['firmware_heap_32bit_bytes']:,} of the {tier2['board_heap_bytes']:,}-byte stock MicroPython heap, 32-bit "
        f"(firmware {tier2['firmware_own_32bit_bytes']:,} measured and counted + transmit ring {tier2['transmit_ring_32bit_bytes']:,} + model "
        f"{tier2['model_heap_32bit_bytes']:,} counted)",
        "decides  the windows it is sure of" if tier2["decides"] else f"advises  only, the fallback decides: {tier2['advises_because']}",
    ])


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

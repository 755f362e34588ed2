"""`hostgen parity`: the reference, the compiled C and MicroPython DSP on the same vectors, compared exactly."""

from __future__ import annotations

import json

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = "compare the reference, C and MicroPython DSP bit for bit"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    parser.add_argument("--n", type=int, default=100_000, help="stream samples to compare (default 100000)")
    parser.add_argument("--windows", type=int, default=10_000, help="windows to compare (default 10000)")
    arguments.as_json(parser, "print the report as JSON")


def run(args) -> int:
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board
    from hostgen.dsp.parity import run_parity
    from hostgen.dsp.runners import open_runner

    board = load_board(args.board)
    with open_runner(board, app_config_for(board, args.app, arguments.log), f"hostgen parity --board {args.board}") as runner:
        report = run_parity(runner, args.n, args.windows)
    print(json.dumps(report, indent=2) if args.json else format_parity(report))
    if report["mismatches"]:
        raise HostgenError(f"{report['mismatches']} mismatching comparison(s) between implementations; see the report above")
    return 0


def format_parity(report: dict) -> str:
    lines = [
        f"fir_{report['filter']} ({report['taps']} taps) and fallback: reference vs C vs MicroPython "
        f"(heap {report['micropython_heap_bytes']} bytes)",
        f"{'vector':<18}{'samples':>9}{'blocks':>8}" + "".join(f"{pair:>18}" for pair in ("ref-c", "ref-micropython", "c-micropython")),
    ]
    for name, entry in report["streams"].items():
        lines.append(f"{name:<18}{entry['samples']:>9}{entry['blocks']:>8}" + "".join(f"{p['mismatches']:>18}" for p in entry["pairs"].values()))
    for name, entry in report["fallback"].items():
        lines.append(f"{'windows ' + name:<18}{entry['windows']:>9}{'':>8}" + "".join(f"{p['mismatches']:>18}" for p in entry["pairs"].values()))
    verdict = "no mismatches" if report["mismatches"] == 0 else f"{report['mismatches']} MISMATCHING comparisons"
    lines.append(f"{report['samples']} samples, {report['windows']} windows: {verdict}")
    return "\n".join(lines)

"""`hostgen monitor`: a board's packet stream live, with counts; optionally saved."""

from __future__ import annotations

import sys

from hostgen.cli import arguments

SUMMARY = "show a board's packet stream live, with counts; save it"


def add_arguments(parser) -> None:
    arguments.serial(parser, "the gateway serial port (or a file / pty) the board's packets come out of")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--save", help="also write PREFIX.csv (every packet) and PREFIX_windows.npy (flagged windows)")


def run(args) -> int:
    from hostgen.board.stream import monitor

    rules = None
    if args.board:
        from hostgen.codegen.build import app_config_for
        from hostgen.config.board import load_board
        from hostgen.dsp.plan import plan_dsp

        board = load_board(args.board)
        rules = plan_dsp(board, app_config_for(board, None, arguments.log)).calibration.rules
    print(monitor(arguments.port_of(args), args.baud, args.seconds, args.save, rules, sys.stdout.isatty()))
    return 0

"""`hostgen flash`: the build's firmware onto a board: compiled, copied, verified, soft-reset, checked."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "put the build's firmware on a board: compiled, copied, verified, soft-reset, checked"


def add_arguments(parser) -> None:
    arguments.board(parser)
    parser.add_argument("--port", help="the board's REPL serial port (default: found by the board file's USB ids)")
    parser.add_argument("--baud", type=int, default=115_200, help="REPL baud rate (USB CDC ignores it)")
    parser.add_argument("--firmware", help="write this stock MicroPython image first (esptool, DfuSe or ST-LINK per the board)")
    parser.add_argument("--dry-run", action="store_true", help="with --firmware: print the commands, run nothing")
    parser.add_argument("--key", help="the board's command key file (made if missing; default "
                        "~/.config/faultline/keys/<board>-<unique id>.key); the gateway config names the same file")


def run(args) -> int:
    from hostgen.board.flash import flash
    from hostgen.config.board import load_board

    print(flash(load_board(args.board), args.port, args.baud, args.firmware, args.dry_run, arguments.log, args.key))
    return 0

"""`hostgen vboard`: a virtual board, the MicroPython unix port behind a pty, as a board's REPL."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "run a virtual board: the MicroPython unix port behind a pty, as a board's REPL"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    parser.add_argument("--link", help="path of the REPL port's symlink (default: build/vboard/<board>/repl)")
    parser.add_argument("--gateway", help="path of the gateway port's symlink (default: build/vboard/<board>/gateway)")
    parser.add_argument("--scenario", help="sensor input: a .npy recording, or a schedule such as "
                        "'normal:20,fault:10,impact,normal:10' (played in a loop)")


def run(args) -> int:
    from hostgen.board.vboard import run_vboard
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board

    board = load_board(args.board)
    run_vboard(board, args.link, args.gateway, args.scenario, app_config_for(board, args.app, arguments.log))
    return 0

"""`hostgen cross`: link the generated C for the board's core, so a real linker proves the placement."""

from __future__ import annotations

from pathlib import Path

from hostgen.cli import arguments

SUMMARY = "link the generated C for the board's core into build/<board>/placement.elf"


def add_arguments(parser) -> None:
    arguments.board(parser)
    parser.add_argument("--build", help="generated build directory (default: build/<board>)")


def run(args) -> int:
    from hostgen.codegen.build import default_out
    from hostgen.codegen.families import family_of
    from hostgen.config.board import load_board

    board = load_board(args.board)
    build_dir = Path(args.build) if args.build else default_out(board)
    print(family_of(board).link(board, build_dir))
    return 0

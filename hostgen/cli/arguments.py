"""Arguments several commands share, and the one way a command reports progress."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(f"hostgen: {message}", file=sys.stderr, flush=True)


def board(parser) -> None:
    parser.add_argument("--board", required=True, help="board name (boards/<name>.toml) or path to a board file")


def model(parser) -> None:
    parser.add_argument("--model", help="int8 .tflite, or .keras to convert (default: the reference model)")
    parser.add_argument("--representative", "--calib", dest="representative",
                        help="representative float32 windows (.npy, or .npz with x) for converting a .keras model to int8")
    parser.add_argument("--fraction", type=float, help="share of SRAM the arena may use (default: the board file's)")


def app(parser) -> None:
    parser.add_argument("--app", help="application config TOML (default: hostgen/config/app.toml)")


def as_json(parser, what: str = "print the figures as JSON") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def implementation(parser) -> None:
    parser.add_argument("--impl", choices=("ref", "c", "micropython"), default="ref", help="which implementation runs")


def serial(parser, port_help: str) -> None:
    parser.add_argument("--port", help=port_help)
    parser.add_argument("--board", help="board name: finds the port by USB id when --port is not given")
    parser.add_argument("--baud", type=int, default=115_200, help="baud rate (USB CDC ignores it)")


def port_of(args) -> str:
    """--port, else the one port with the board file's USB ids."""
    from hostgen.board.link import find_port
    from hostgen.config.board import load_board
    from hostgen.errors import HostgenError

    if args.port:
        return args.port
    if not args.board:
        raise HostgenError("give --port (the board's serial port), or --board to find it by its USB ids")
    return find_port(load_board(args.board))

"""`make gateway-demo`: a broker, 8 virtual boards and a gateway on this machine; the plant side live."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "a broker, 8 virtual boards and a gateway here; the alerts live on the plant side"


def add_arguments(parser) -> None:
    parser.add_argument("--board", default="stm32f4", help="board to demonstrate (default stm32f4)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to watch the plant side (default 30)")


def run(args) -> int:
    from hostgen.config.board import load_board
    from hostgen.gateway.demo import run_gateway_demo

    print(run_gateway_demo(load_board(args.board), args.seconds, arguments.log))
    return 0

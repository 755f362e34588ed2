"""`make demo`: the main job on the embedded default, end to end on a virtual board.

Generate for the board, start a virtual board, flash it, play a scenario with an
injected fault, show the decoded packets live (the alerts among them), and stop.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hostgen.cli import arguments

SUMMARY = "the whole path on a virtual board: generate, flash, play a fault, show the packets"
SCENARIO = "normal:6,impact,normal:3,fault:8,normal:4"


def add_arguments(parser) -> None:
    parser.add_argument("--board", default="stm32f4", help="board to demonstrate (default stm32f4)")
    parser.add_argument("--seconds", type=float, default=24.0, help="how long to watch the packets (default 24)")


def run(args) -> int:
    from hostgen.board.flash import flash
    from hostgen.board.stream import monitor
    from hostgen.board.vboard import VirtualBoardProcess
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board
    from hostgen.dsp.plan import plan_dsp

    board = load_board(args.board)
    log = arguments.log
    with tempfile.TemporaryDirectory(prefix="faultline-demo-") as work, \
            VirtualBoardProcess(board.name, Path(work), SCENARIO) as vboard:
        log(f"virtual {board.name} on {vboard.repl}; flashing it")
        print(flash(board, str(vboard.repl), 115_200, None, False, log), flush=True)
        log(f"scenario {SCENARIO} (seconds of each); packets from the gateway port for {args.seconds:g} s:")
        rules = plan_dsp(board, app_config_for(board, None, log)).calibration.rules
        print(monitor(str(vboard.gateway), 115_200, args.seconds, None, rules, sys.stdout.isatty()))
    return 0

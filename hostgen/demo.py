"""`make demo`: the main job on the embedded default, end to end on a virtual board.

Generate for the board, start a virtual board, flash it, play a scenario with an
injected fault, show the decoded packets live (the alerts among them), and stop.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hostgen.boards import Board
from hostgen.flash import flash
from hostgen.stream import monitor
from hostgen.vboard import VirtualBoardProcess

SCENARIO = "normal:6,impact,normal:3,fault:8,normal:4"


def run_demo(board: Board, seconds: float, log) -> str:
    with tempfile.TemporaryDirectory(prefix="faultline-demo-") as work, \
            VirtualBoardProcess(board.name, Path(work), SCENARIO) as vboard:
        log(f"virtual {board.name} on {vboard.repl}; flashing it")
        print(flash(board, str(vboard.repl), 115_200, None, False, log), flush=True)
        log(f"scenario {SCENARIO} (seconds of each); packets from the gateway port for {seconds:g} s:")
        from hostgen.dsp import plan_dsp

        rules = plan_dsp(board, None).calibration.rules
        return monitor(str(vboard.gateway), 115_200, seconds, None, rules, sys.stdout.isatty())

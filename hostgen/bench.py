"""`hostgen bench`: cost per sample of the generated FIR: plain MicroPython, viper, C, as ratios."""

from __future__ import annotations

from hostgen.boards import Board
from hostgen.runners import open_runner


def run_bench(board: Board, app_path: str | None, samples: int) -> str:
    with open_runner(board, app_path, f"hostgen bench --board {board.name}") as runner:
        taps = runner.plan.design.taps
        c = runner.bench_fir_ns("c", samples * 10)
        viper = runner.bench_fir_ns("viper", samples)
        plain = runner.bench_fir_ns("plain", max(4096, samples // 20))
    return "\n".join(
        [
            f"fir_{runner.plan.design.name}, {taps} taps, host figures from one run (MicroPython unix port, gcc -O2):",
            f"  C        {c:9.1f} ns/sample   1.0 x C",
            f"  viper    {viper:9.1f} ns/sample {viper / c:5.1f} x C",
            f"  plain    {plain:9.1f} ns/sample {plain / c:5.1f} x C   ({plain / viper:.1f} x viper)",
        ]
    )

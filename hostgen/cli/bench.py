"""`hostgen bench`: figures, not assertions, each set measured in one run on this host.

The FIR per sample as plain MicroPython, viper and C (ratios to C), and the firmware's
loop time per block on the MicroPython unix port (p50, p99, max, and p99/p50).
"""

from __future__ import annotations

import numpy as np

from hostgen.cli import arguments

SUMMARY = "time the FIR (plain MicroPython, viper, C) and the firmware loop"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    parser.add_argument("--samples", type=int, default=200_000, help="samples per FIR timing run")
    parser.add_argument("--loop-blocks", type=int, default=100_000, help="firmware loop blocks to time (default 100000)")


def run(args) -> int:
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board

    board = load_board(args.board)
    print(bench(board, app_config_for(board, args.app, arguments.log), args.samples, args.loop_blocks))
    return 0


def fir_costs(board, app_path: str | None, samples: int) -> list[str]:
    from hostgen.dsp.runners import open_runner

    with open_runner(board, app_path, f"hostgen bench --board {board.name}") as runner:
        name, taps = runner.plan.design.name, runner.plan.design.taps
        c = runner.bench_fir_ns("c", samples * 10)
        viper = runner.bench_fir_ns("viper", samples)
        plain = runner.bench_fir_ns("plain", max(4096, samples // 20))
    return [
        f"fir_{name}, {taps} taps, ns per sample (MicroPython unix port; gcc -O2):",
        f"  C        {c:9.1f} ns/sample   1.0 x C",
        f"  viper    {viper:9.1f} ns/sample {viper / c:5.1f} x C",
        f"  plain    {plain:9.1f} ns/sample {plain / c:5.1f} x C   ({plain / viper:.1f} x viper)",
    ]


def loop_costs(board, app_path: str | None, blocks: int) -> list[str]:
    from hostgen.board.replay import replay
    from hostgen.data import synthetic as dataset

    rng = np.random.default_rng(7)
    block = 8
    machine = dataset.random_machine(rng, fault=False)
    recording = dataset.synthesize(machine, blocks * block, rng).reshape(-1, 1)
    result = replay(board, recording, app_path)
    ratio = result.loop_p99_us / max(result.loop_p50_us, 1)
    return [
        f"firmware loop over {result.blocks} blocks of normal running (MicroPython unix port, {result.heap_bytes}-byte heap):",
        f"  p50 {result.loop_p50_us} us   p99 {result.loop_p99_us} us   max {result.loop_max_us} us   p99/p50 {ratio:.2f}",
        f"  heap peak {result.heap_peak_bytes} bytes; link {result.link_bytes} bytes",
    ]


def bench(board, app_path: str | None, samples: int, loop_blocks: int) -> str:
    return "\n".join(fir_costs(board, app_path, samples) + loop_costs(board, app_path, loop_blocks))

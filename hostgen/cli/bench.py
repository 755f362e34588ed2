"""`hostgen bench`: figures, not assertions, each set measured in one run on this host.

The FIR per sample as plain MicroPython, viper and C (ratios to C); the fallback per window as viper
and C, and what it adds per block; the build's model per window
as MicroPython (viper) and C (the ratio), with its instructions per inference on an emulated
Cortex-M4 and the time that makes at the board's clock; and the firmware's loop time per block
on the MicroPython unix port (p50, p99, max, and p99/p50), with the model running.
"""

from __future__ import annotations

import json

import numpy as np

from hostgen.cli import arguments

SUMMARY = "time the FIR (plain MicroPython, viper, C), the fallback (viper, C) and the firmware loop"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    parser.add_argument("--samples", type=int, default=200_000, help="samples per FIR timing run")
    parser.add_argument("--loop-blocks", type=int, default=100_000, help="firmware loop blocks to time (default 100000)")
    parser.add_argument("--inferences", type=int, default=200, help="model inferences to time per implementation (default 200)")


def run(args) -> int:
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board

    board = load_board(args.board)
    print(bench(board, app_config_for(board, args.app, arguments.log), args.samples, args.loop_blocks, args.inferences))
    return 0


def dsp_costs(board, app_path: str | None, samples: int) -> list[str]:
    """The FIR per sample and the fallback per window, each implementation in the same run."""
    from hostgen.dsp.features import FEATURES
    from hostgen.dsp.runners import open_runner

    with open_runner(board, app_path, f"hostgen bench --board {board.name}") as runner:
        name, taps = runner.plan.design.name, runner.plan.design.taps
        sampling = runner.plan.app["sampling"]
        c = runner.bench_fir_ns("c", samples * 10)
        viper = runner.bench_fir_ns("viper", samples)
        plain = runner.bench_fir_ns("plain", max(4096, samples // 20))
        windows = max(20, samples // 1000)
        fallback_c = runner.bench_fallback_ns("c", windows * 100)
        fallback_viper = runner.bench_fallback_ns("viper", windows)
    stride_blocks = sampling["stride_samples"] // sampling["block_samples"]
    per_block = fallback_viper / stride_blocks
    return [
        f"fir_{name}, {taps} taps, ns per sample (MicroPython unix port; gcc -O2):",
        f"  C        {c:9.1f} ns/sample   1.0 x C",
        f"  viper    {viper:9.1f} ns/sample {viper / c:5.1f} x C",
        f"  plain    {plain:9.1f} ns/sample {plain / c:5.1f} x C   ({plain / viper:.1f} x viper)",
        f"fallback, {len(FEATURES)} features of a {sampling['window_samples']}-sample window, us per window:",
        f"  C        {fallback_c / 1000:9.1f} us/window   1.0 x C",
        f"  viper    {fallback_viper / 1000:9.1f} us/window {fallback_viper / fallback_c:5.1f} x C   (one window per "
        f"{stride_blocks} blocks: {per_block / 1000:.1f} us per block, {per_block / (viper * sampling['block_samples']):.1f} x "
        "the FIR's viper block)",
    ]


def model_costs(board, app_path: str | None, inferences: int) -> list[str]:
    """The build's model per window: MicroPython and C in the same run, and the emulated Cortex-M4's count."""
    from hostgen.board.unix_port import unix_heap_bytes
    from hostgen.codegen.build import build_with_app, recorded_request
    from hostgen.config.app import load_app
    from hostgen.model.engine.bench import engine_bench

    build = build_with_app(board, app_path, arguments.log)
    record = json.loads((build / "build.json").read_text())
    if record["tier2"]["engine"] != "on":
        return [f"model: none runs on this build ({record['tier2']['reason']})"]
    app = load_app(recorded_request(build).app)
    figures = engine_bench(build / f"{record['model_name']}.tflite", unix_heap_bytes(board), inferences, app["model"]["input_recipe"])
    stride_ms = 1000 * app["sampling"]["stride_samples"] / app["sampling"]["rate_hz"]
    c, micropython, ratio = figures["c_ms"], figures["micropython_ms"], figures["micropython_to_c"]
    lines = [
        f"model {figures['model']} ({figures['macs']:,} MACs) per window, this host:",
        f"  C            {c:9.3f} ms   1.0 x C",
        f"  MicroPython  {micropython:9.3f} ms {ratio:5.1f} x C   (viper, unix port)",
        f"  input recipe {figures['recipe']}: {figures['micropython_prepare_ms']:.3f} ms per window in MicroPython, "
        f"{figures['prepare_to_inference']:.2f} x an inference (run whole in the block that starts the model)",
    ]
    if figures["cortex_m4_instructions"] is None:
        lines.append("  Cortex-M4: not run (needs qemu-system-arm and arm-none-eabi-gcc: make setup)")
    else:
        at_clock = figures["cortex_m4_ms_at_168mhz"]
        lines += [
            f"  Cortex-M4 (qemu netduinoplus2, -icount): {figures['cortex_m4_instructions']:,} instructions per inference of the C engine",
            f"  at 168 MHz and 1 instruction per cycle: {at_clock:.2f} ms for C; times the MicroPython/C ratio above, about "
            f"{at_clock * ratio:.1f} ms for the viper module, of a {stride_ms:.0f} ms stride (an estimate: loads and taken "
            "branches take 2 cycles, and viper's Thumb code is not the host's)",
        ]
    return lines


def loop_costs(board, app_path: str | None, blocks: int) -> list[str]:
    from hostgen.board.image import build_firmware
    from hostgen.board.replay import replay
    from hostgen.codegen.build import build_with_app
    from hostgen.data import synthetic as dataset

    rng = np.random.default_rng(7)
    block = 8
    machine = dataset.random_machine(rng, fault=False)
    recording = dataset.synthesize(machine, blocks * block, rng).reshape(-1, 1)
    result = replay(board, recording, modules=build_firmware(build_with_app(board, app_path, arguments.log)))
    ratio = result.loop_p99_us / max(result.loop_p50_us, 1)
    return [
        f"firmware loop over {result.blocks} blocks of normal running (MicroPython unix port, {result.heap_bytes}-byte heap):",
        f"  p50 {result.loop_p50_us} us   p99 {result.loop_p99_us} us   max {result.loop_max_us} us   p99/p50 {ratio:.2f}",
        f"  heap peak {result.heap_peak_bytes} bytes; link {result.link_bytes} bytes",
    ]


def bench(board, app_path: str | None, samples: int, loop_blocks: int, inferences: int) -> str:
    return "\n".join(dsp_costs(board, app_path, samples) + model_costs(board, app_path, inferences)
                     + loop_costs(board, app_path, loop_blocks))

"""`hostgen fallback`: the fallback heuristic over a recording, window by window, in one implementation."""

from __future__ import annotations

import json
from pathlib import Path

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = "run the fallback heuristic over a recording, window by window"

def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    arguments.implementation(parser)
    parser.add_argument("--in", dest="input", required=True, help="int16 .npy recording")
    arguments.as_json(parser, "print every window as JSON")

def run(args) -> int:
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board

    board = load_board(args.board)
    result = fallback_recording(board, Path(args.input), args.impl, app_config_for(board, args.app, arguments.log))
    print(json.dumps(result, indent=2) if args.json else format_fallback(result))
    return 0

def fallback_recording(board, source: Path, implementation: str, app_path: str | None) -> dict:
    from hostgen.data.recordings import load_recording
    from hostgen.dsp.fastpath import settle_blocks
    from hostgen.dsp.features import DECISIONS, FEATURES, windows_of
    from hostgen.dsp.runners import open_runner

    recording = load_recording(source)
    with open_runner(board, app_path, f"hostgen fallback --board {board.name}") as runner:
        app, plan = runner.plan.app, runner.plan
        if recording.shape[1] != app["sampling"]["channels"]:
            raise HostgenError(
                f"recording {source} has {recording.shape[1]} channel(s) but {board.name}'s thresholds are for "
                f"{app['sampling']['channels']}; set sampling.channels or give a matching recording"
            )
        filtered = runner.filter_channels(implementation, recording)
        window, stride = app["sampling"]["window_samples"], app["sampling"]["stride_samples"]
        offset = settle_blocks(plan.design.taps, app["sampling"]["block_samples"]) * app["sampling"]["block_samples"]
        rows = []
        for channel in range(recording.shape[1]):
            windows = windows_of(filtered[offset:, channel], window, stride)
            raws = windows_of(recording[offset:, channel], window, stride)
            results = runner.fallback(implementation, windows, raws, plan.calibration.thresholds[channel])
            for index, result in enumerate(results):
                rule = int(result[len(FEATURES) + 1])
                rows.append({
                    "channel": channel,
                    "start_sample": offset + index * stride,
                    "decision": DECISIONS[int(result[len(FEATURES)])],
                    "rule": plan.calibration.rules[rule] if rule >= 0 else None,
                    "score_q8": int(result[-1]),
                    "features": dict(zip(FEATURES, map(int, result[: len(FEATURES)]))),
                })
    counts = {name: sum(r["decision"] == name for r in rows) for name in DECISIONS}
    return {"board": board.name, "recording": str(source), "implementation": implementation, "windows": rows, "counts": counts}

def format_fallback(result: dict) -> str:
    from hostgen.dsp.features import DECISIONS, FEATURES

    header = f"{'ch':>2} {'start':>8} {'decision':<8} {'rule':<18} {'score':>6} " + " ".join(f"{f:>8}" for f in FEATURES)
    lines = [header]
    for row in result["windows"]:
        lines.append(
            f"{row['channel']:>2} {row['start_sample']:>8} {row['decision']:<8} {row['rule'] or '-':<18} {row['score_q8']:>6} "
            + " ".join(f"{row['features'][f]:>8}" for f in FEATURES)
        )
    counts = result["counts"]
    lines.append(f"{len(result['windows'])} windows ({result['implementation']}): " + ", ".join(f"{counts[d]} {d}" for d in DECISIONS))
    return "\n".join(lines)

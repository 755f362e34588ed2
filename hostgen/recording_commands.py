"""`hostgen filter` and `hostgen fallback`: one implementation run on a user's recording."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hostgen.boards import Board
from hostgen.calibration import load_recording
from hostgen.errors import HostgenError
from hostgen.fastpath import settle_blocks
from hostgen.features import DECISIONS, FEATURES, windows_of
from hostgen.runners import MAX_BLOCK, open_runner


def _filter_channels(runner, recording: np.ndarray, implementation: str) -> np.ndarray:
    block = runner.plan.app["sampling"]["block_samples"]
    blocks = [min(block, len(recording) - start) for start in range(0, len(recording), block)]
    assert block <= MAX_BLOCK
    return np.stack([runner.filter(implementation, recording[:, c], blocks) for c in range(recording.shape[1])], axis=1)


def filter_recording(board: Board, source: Path, target: Path, implementation: str, app_path: str | None) -> str:
    recording = load_recording(source)
    if target.suffix != ".npy":
        raise HostgenError(f"--out {target} must end in .npy")
    started = time.monotonic()
    with open_runner(board, app_path, f"hostgen filter --board {board.name}") as runner:
        filtered = _filter_channels(runner, recording, implementation)
        name = runner.plan.design.name
    shaped = filtered.reshape(np.load(source, mmap_mode="r").shape)
    partial = target.with_name(target.name + ".partial.npy")
    try:
        np.save(partial, shaped)
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise HostgenError(f"cannot write {target}: {exc.strerror}") from None
    return (
        f"filtered {len(recording)} samples x {recording.shape[1]} channel(s) with fir_{name} ({implementation}) "
        f"into {target} in {time.monotonic() - started:.2f} s"
    )


def fallback_recording(board: Board, source: Path, implementation: str, app_path: str | None) -> dict:
    recording = load_recording(source)
    with open_runner(board, app_path, f"hostgen fallback --board {board.name}") as runner:
        app, plan = runner.plan.app, runner.plan
        if recording.shape[1] != app["sampling"]["channels"]:
            raise HostgenError(
                f"recording {source} has {recording.shape[1]} channel(s) but {board.name}'s thresholds are for "
                f"{app['sampling']['channels']}; set sampling.channels or give a matching recording"
            )
        filtered = _filter_channels(runner, recording, implementation)
        window, stride = app["sampling"]["window_samples"], app["sampling"]["stride_samples"]
        offset = settle_blocks(plan.design.taps, app["sampling"]["block_samples"]) * app["sampling"]["block_samples"]
        rows = []
        for channel in range(recording.shape[1]):
            windows = windows_of(filtered[offset:, channel], window, stride)
            results = runner.fallback(implementation, windows, plan.calibration.thresholds[channel])
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

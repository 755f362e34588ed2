"""`hostgen filter`: a recording through the board's generated FIR, in one implementation."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = "filter a recording with the board's generated FIR"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    arguments.implementation(parser)
    parser.add_argument("--in", dest="input", required=True, help="int16 .npy recording")
    parser.add_argument("--out", dest="output", required=True, help="filtered int16 .npy to write")


def run(args) -> int:
    from hostgen.codegen.build import app_config_for
    from hostgen.config.board import load_board

    board = load_board(args.board)
    print(filter_recording(board, Path(args.input), Path(args.output), args.impl, app_config_for(board, args.app, arguments.log)))
    return 0


def filter_recording(board, source: Path, target: Path, implementation: str, app_path: str | None) -> str:
    from hostgen.data.recordings import load_recording
    from hostgen.dsp.runners import open_runner
    from hostgen.util.atomic import write_atomic

    recording = load_recording(source)
    if target.suffix != ".npy":
        raise HostgenError(f"--out {target} must end in .npy")
    started = time.monotonic()
    with open_runner(board, app_path, f"hostgen filter --board {board.name}") as runner:
        filtered = runner.filter_channels(implementation, recording)
        name = runner.plan.design.name
    encoded = io.BytesIO()
    np.save(encoded, filtered.reshape(np.load(source, mmap_mode="r").shape))
    try:
        write_atomic(target, encoded.getvalue())
    except OSError as exc:
        raise HostgenError(f"cannot write {target}: {exc.strerror}") from None
    return (
        f"filtered {len(recording)} samples x {recording.shape[1]} channel(s) with fir_{name} ({implementation}) "
        f"into {target} in {time.monotonic() - started:.2f} s"
    )

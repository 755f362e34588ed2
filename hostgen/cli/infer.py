"""`hostgen infer`: an int8 model on input tensors, in TFLM, the engine's reference, its C or its MicroPython."""

from __future__ import annotations

from pathlib import Path

from hostgen.cli import arguments

SUMMARY = "run an int8 model on input tensors: TFLM, the engine's reference, its C or its MicroPython"


def add_arguments(parser) -> None:
    arguments.board(parser)
    parser.add_argument("--model", required=True, help="int8 .tflite model")
    parser.add_argument("--in", dest="input", required=True, help="int8 .npy of shape (batch, *model input shape)")
    parser.add_argument("--out", dest="output", required=True, help="int8 .npy to write: (batch, *model output shape)")
    parser.add_argument("--impl", choices=("tflm", "ref", "c", "micropython"), default="ref", help="which implementation runs")


def run(args) -> int:
    from hostgen.config.board import load_board
    from hostgen.model.engine.infer import infer

    print(infer(load_board(args.board), Path(args.model), Path(args.input), Path(args.output), args.impl))
    return 0

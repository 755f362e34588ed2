"""`hostgen infer`: the model on int8 input tensors in one implementation, at the tensor level
(whatever the input shape; whether it fits the app's window is checked when it goes into firmware)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np

from hostgen.board.unix_port import unix_heap_bytes
from hostgen.config.board import Board
from hostgen.errors import HostgenError
from hostgen.model.engine.generate import compile_model
from hostgen.model.engine.runners import EngineRunner
from hostgen.model.tflite import load_model


def engine_name(model_path: Path) -> str:
    """A C identifier from the model's file name."""
    name = re.sub(r"\W", "_", model_path.stem).strip("_") or "model"
    return f"m_{name}" if name[0].isdigit() else name


def load_tensors(path: Path, input_shape: tuple[int, ...], model_path: Path) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise HostgenError(f"cannot read --in {path} as a .npy array ({str(exc).splitlines()[0][:120]}); give an int8 .npy file") from None
    expected = f"(batch, {', '.join(map(str, input_shape))})"
    if x.dtype != np.int8:
        raise HostgenError(
            f"--in {path} holds {x.dtype} values but model {model_path.name} takes int8 tensors of shape {expected}; "
            "quantize the inputs with the input tensor's scale and zero point and save them as int8"
        )
    if x.ndim != len(input_shape) + 1 or tuple(x.shape[1:]) != tuple(input_shape):
        raise HostgenError(
            f"--in {path} has shape {tuple(x.shape)} but model {model_path.name} takes int8 tensors of shape {expected}; "
            f"reshape it to (N, {', '.join(map(str, input_shape))})"
        )
    return x


def infer(board: Board, model_path: Path, in_path: Path, out_path: Path, implementation: str) -> str:
    if out_path.suffix != ".npy":
        raise HostgenError(f"--out {out_path} must end in .npy")
    model = load_model(model_path)
    command = f"hostgen infer --board {board.name} --impl {implementation}"
    compiled = compile_model(model, engine_name(model_path), command)
    x = load_tensors(in_path, compiled.graph.input_tensor.shape, model_path)
    started = time.monotonic()
    with EngineRunner(model, compiled, unix_heap_bytes(board), command) as runner:
        y = runner.run(implementation, x)
    partial = out_path.with_name(out_path.name + ".partial.npy")
    try:
        np.save(partial, y)
        os.replace(partial, out_path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise HostgenError(f"cannot write --out {out_path}: {exc.strerror}; choose another path") from None
    return f"{len(x)} input tensor(s) through {model_path.name} ({implementation}) into {out_path} {tuple(y.shape)} in {time.monotonic() - started:.2f} s"

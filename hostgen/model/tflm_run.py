"""Run an int8 model in the real TFLM runtime on host, as the board would."""

from __future__ import annotations

import numpy as np
from tflite_micro import runtime

from hostgen.model.arena import measure_arena
from hostgen.model.tflite import ModelInfo


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * scale


def tflm_predict(model: ModelInfo, x: np.ndarray) -> np.ndarray:
    """Float scores for float inputs `x` (batch first), through int8 quantize -> TFLM -> dequantize."""
    arena = measure_arena(model).reserved_bytes
    interpreter = runtime.Interpreter.from_bytes(model.data, arena_size=arena)
    source, target = model.inputs[0], model.outputs[0]
    outputs = []
    for sample in x:
        q = quantize_input(sample, source.scales[0], source.zero_points[0])
        interpreter.set_input(q.reshape(source.shape), 0)
        interpreter.invoke()
        out = interpreter.get_output(0)
        outputs.append(dequantize(out, target.scales[0], target.zero_points[0]).reshape(-1))
    return np.stack(outputs)

"""The truth: the pinned TFLM runtime's reference kernels on int8 tensors, batch first."""

from __future__ import annotations

import numpy as np

from hostgen.model.arena import measure_arena
from hostgen.model.tflite import ModelInfo


def run(model: ModelInfo, x: np.ndarray) -> np.ndarray:
    """int8 `x` of shape (batch, *input shape) -> int8 (batch, *output shape), one invoke per item."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model.data, arena_size=measure_arena(model).reserved_bytes)
    outputs = []
    for item in x:
        interpreter.set_input(np.ascontiguousarray(item, np.int8), 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0), np.int8))
    return np.stack(outputs).reshape(len(x), *model.outputs[0].shape)

"""A model's operators in execution order, and the multiply-accumulates they cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.model.tflite import ModelInfo, operator_names, parse_flatbuffer


@dataclass(frozen=True)
class Operator:
    name: str
    inputs: tuple[int, ...]  # tensor indices; -1 for an absent optional input
    outputs: tuple[int, ...]


def operators(model: ModelInfo) -> list[Operator]:
    flatbuffer = parse_flatbuffer(model.path, model.data)
    names = operator_names(model.path, flatbuffer)
    return [
        Operator(names[op.opcodeIndex], tuple(int(i) for i in op.inputs), tuple(int(i) for i in op.outputs))
        for op in flatbuffer.subgraphs[0].operators or []
    ]


def operator_macs(model: ModelInfo, op: Operator) -> int:
    """Multiply-accumulates of one invocation; 0 for operators without weights."""
    if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return 0
    outputs = int(np.prod(model.tensors[op.outputs[0]].shape))
    weights = model.tensors[op.inputs[1]].shape
    if op.name == "CONV_2D":  # filter [out, kh, kw, in]
        return outputs * int(np.prod(weights[1:]))
    if op.name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out]
        return outputs * weights[1] * weights[2]
    return outputs * weights[-1]  # FULLY_CONNECTED weights [units, in]


def macs_by_op(model: ModelInfo) -> dict[str, int]:
    """Multiply-accumulates per op type, for the op types that have any."""
    totals: dict[str, int] = {}
    for op in operators(model):
        if macs := operator_macs(model, op):
            totals[op.name] = totals.get(op.name, 0) + macs
    return totals

"""The engine's numpy reference: the lowered graph run on int8 tensors, batch first.

This is the readable definition the generated C and MicroPython are checked against, and it
is itself checked against the TFLM runtime.
"""

from __future__ import annotations

import numpy as np

from hostgen.model.engine import fixedpoint as fp
from hostgen.model.engine.lowering import Graph, Op

CHUNK = 32  # inputs per vectorised pass: bounds the int64 intermediates' memory


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """int8 `x` of shape (batch, *input shape) -> int8 (batch, *output shape)."""
    if len(x) > CHUNK:
        return np.concatenate([run(graph, x[start : start + CHUNK]) for start in range(0, len(x), CHUNK)])
    batch = x.shape[0]
    values = {graph.input: x.astype(np.int64).reshape(batch, -1)}
    for op in graph.ops:
        inputs = [values[i] for i in op.inputs]
        values[op.output] = KERNELS[op.kind](op, inputs, batch)
    return values[graph.output].astype(np.int8).reshape(batch, *graph.output_tensor.shape)


def _requantize(acc, op: Op):
    p = op.params
    out = fp.multiply_by_quantized_multiplier(acc, op.arrays["multiplier"], op.arrays["shift"]) + p["output_zero_point"]
    return np.clip(out, p["act_min"], p["act_max"])


def _padded(x, p, batch, channels, fill):
    """(batch, H, W, C) with the leading pad and enough trailing pad for every window."""
    image = x.reshape(batch, p["in_h"], p["in_w"], channels)
    dilation_h, dilation_w = p.get("dilation_h", 1), p.get("dilation_w", 1)
    need_h = (p["out_h"] - 1) * p["stride_h"] + (p["k_h"] - 1) * dilation_h + 1
    need_w = (p["out_w"] - 1) * p["stride_w"] + (p["k_w"] - 1) * dilation_w + 1
    bottom = max(need_h - p["pad_top"] - p["in_h"], 0)
    right = max(need_w - p["pad_left"] - p["in_w"], 0)
    return np.pad(image, ((0, 0), (p["pad_top"], bottom), (p["pad_left"], right), (0, 0)), constant_values=fill)


def _windows(padded, p):
    """Yield (ky, kx, the input under tap (ky, kx) for every output position): (batch, out_h, out_w, C)."""
    dilation_h, dilation_w = p.get("dilation_h", 1), p.get("dilation_w", 1)
    for ky in range(p["k_h"]):
        for kx in range(p["k_w"]):
            top, left = ky * dilation_h, kx * dilation_w
            yield ky, kx, padded[:, top : top + (p["out_h"] - 1) * p["stride_h"] + 1 : p["stride_h"],
                                 left : left + (p["out_w"] - 1) * p["stride_w"] + 1 : p["stride_w"], :]


def conv(op: Op, inputs, batch):
    p = op.params
    padded = _padded(inputs[0] - p["input_zero_point"], p, batch, p["in_c"], 0)
    weights = op.arrays["weights"].astype(np.float64)
    acc = np.zeros((batch, p["out_h"], p["out_w"], p["out_c"]), np.float64)
    for ky, kx, window in _windows(padded.astype(np.float64), p):
        acc += window @ weights[:, ky, kx, :].T  # float64 is exact here: every sum stays below 2^31
    return _requantize(acc.astype(np.int64) + op.arrays["bias"], op).reshape(batch, -1)


def depthwise(op: Op, inputs, batch):
    p = op.params
    padded = _padded(inputs[0] - p["input_zero_point"], p, batch, p["in_c"], 0)
    weights = op.arrays["weights"].astype(np.int64)
    source_channel = np.arange(p["out_c"]) // p["depth_multiplier"]
    acc = np.zeros((batch, p["out_h"], p["out_w"], p["out_c"]), np.int64)
    for ky, kx, window in _windows(padded, p):
        acc += window[..., source_channel] * weights[:, ky, kx]
    return _requantize(acc + op.arrays["bias"], op).reshape(batch, -1)


def fully_connected(op: Op, inputs, batch):
    p = op.params
    x = inputs[0].reshape(batch, p["batches"], p["depth"]) - p["input_zero_point"]
    acc = (x.astype(np.float64) @ op.arrays["weights"].astype(np.float64).T).astype(np.int64) + op.arrays["bias"]  # exact: below 2^31
    return _requantize(acc, op).reshape(batch, -1)


def max_pool(op: Op, inputs, batch):
    p = op.params
    padded = _padded(inputs[0], p, batch, p["channels"], -(1 << 20))
    best = np.full((batch, p["out_h"], p["out_w"], p["channels"]), -(1 << 20), np.int64)
    for _, _, window in _windows(padded, p):
        best = np.maximum(best, window)
    return np.clip(best, p["act_min"], p["act_max"]).reshape(batch, -1)


def average_pool(op: Op, inputs, batch):
    p = op.params
    padded = _padded(inputs[0], p, batch, p["channels"], 0)
    inside = _padded(np.ones_like(inputs[0]), p, batch, p["channels"], 0)
    total = np.zeros((batch, p["out_h"], p["out_w"], p["channels"]), np.int64)
    count = np.zeros_like(total)
    for (_, _, window), (_, _, valid) in zip(_windows(padded, p), _windows(inside, p)):
        total += window
        count += valid
    rounded = np.where(total > 0, _divide_truncating(total + count // 2, count), _divide_truncating(total - count // 2, count))
    return np.clip(rounded, p["act_min"], p["act_max"]).reshape(batch, -1)


def _divide_truncating(a, b):
    """C's integer division (toward zero)."""
    quotient = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -quotient, quotient)


def mean(op: Op, inputs, batch):
    p = op.params
    total = inputs[0].reshape(batch, p["outer"], p["count"], p["inner"]).sum(axis=2)
    shifted = total - p["input_zero_point"] * p["count"]
    out = fp.multiply_by_quantized_multiplier(shifted, op.arrays["multiplier"][0], op.arrays["shift"][0]) + p["output_zero_point"]
    return np.clip(out, -128, 127).reshape(batch, -1)


def reduce_max(op: Op, inputs, batch):
    p = op.params
    return inputs[0].reshape(batch, p["outer"], p["count"], p["inner"]).max(axis=2).reshape(batch, -1)


def _operands(op: Op, inputs, batch):
    supplied = iter(inputs)
    operands = []
    for role in ("first", "second"):
        value = op.arrays[f"{role}_constant"].astype(np.int64)[np.newaxis] if op.params[f"{role}_is_constant"] else next(supplied)
        operands.append(np.broadcast_to(value, (batch, op.params["count"])) + op.params[f"{role}_offset"])
    return operands


def add(op: Op, inputs, batch):
    p, a = op.params, op.arrays
    first, second = _operands(op, inputs, batch)
    scaled = [
        fp.multiply_by_quantized_multiplier(value * (1 << p["left_shift"]), a[f"{role}_multiplier"][0], a[f"{role}_shift"][0])
        for role, value in (("first", first), ("second", second))
    ]
    out = fp.multiply_by_quantized_multiplier(scaled[0] + scaled[1], a["output_multiplier"][0], a["output_shift"][0])
    return np.clip(out + p["output_zero_point"], p["act_min"], p["act_max"])


def mul(op: Op, inputs, batch):
    p = op.params
    first, second = _operands(op, inputs, batch)
    out = fp.multiply_by_quantized_multiplier(first * second, op.arrays["multiplier"][0], op.arrays["shift"][0])
    return np.clip(out + p["output_zero_point"], p["act_min"], p["act_max"])


def softmax(op: Op, inputs, batch):
    p = op.params
    x = inputs[0].reshape(batch, p["rows"], p["depth"])
    difference = x.max(axis=2, keepdims=True) - x
    sum_of_exps = op.arrays["exp_accumulated"][difference].sum(axis=2, keepdims=True)
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, 12)
    unsaturated = fp.rounding_divide_by_pot(fp.srdhm(shifted_scale, op.arrays["exp"][difference]), num_bits_over_unit + 31 - 8)
    return np.clip(unsaturated - 128, -128, 127).reshape(batch, -1)


def lookup(op: Op, inputs, batch):
    return op.arrays["table"].astype(np.int64)[inputs[0] + 128]


def alias(op: Op, inputs, batch):
    return inputs[0]


KERNELS = {
    "conv": conv, "depthwise": depthwise, "fully_connected": fully_connected, "max_pool": max_pool,
    "average_pool": average_pool, "mean": mean, "reduce_max": reduce_max, "add": add, "mul": mul,
    "softmax": softmax, "lookup": lookup, "alias": alias,
}

"""Lower a .tflite model to the engine's op list, every integer parameter computed offline
exactly as TFLM's Prepare computes it.

A model the engine cannot run bit-exactly on a 32-bit board is refused with one line naming
the problem; the build keeps its TFLM arrays and the firmware its fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from hostgen.errors import HostgenError
from hostgen.model.engine import fixedpoint as fp
from hostgen.model.tflite import TYPE_NAMES, ModelInfo, operator_names, parse_flatbuffer

ALIAS_OPS = ("RESHAPE", "EXPAND_DIMS", "SQUEEZE")
LOOKUP_OPS = ("LOGISTIC", "QUANTIZE")
SUPPORTED_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "REDUCE_MAX",
    "ADD", "MUL", "SOFTMAX", *ALIAS_OPS, *LOOKUP_OPS,
)
MAX_SOFTMAX_DEPTH = 256  # keeps GetReciprocal's shift inside 31 bits
ACCUMULATOR_LIMIT = 1 << 31
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


class UnsupportedOp(HostgenError):
    """The model uses an op the engine cannot run: the build keeps its TFLM arrays and the fallback decides."""


@dataclass(frozen=True)
class Tensor:
    index: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass
class Op:
    """One engine op: `kind` picks the kernel; `params` are scalars, `arrays` per-channel tables and weights."""

    kind: str
    tflite_op: str
    inputs: tuple[int, ...]  # activation tensors read (constants live in `arrays`)
    output: int
    params: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    units: int = 1  # the op's work in slices: `units` pieces of `unit_macs` multiply-accumulates each
    unit_macs: int = 1

    @property
    def macs(self) -> int:
        return self.units * self.unit_macs


@dataclass
class Graph:
    name: str
    path: Path
    sha256: str
    tensors: dict[int, Tensor]
    ops: list[Op]
    input: int
    output: int

    @property
    def input_tensor(self) -> Tensor:
        return self.tensors[self.input]

    @property
    def output_tensor(self) -> Tensor:
        return self.tensors[self.output]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)


class _Reader:
    """The flatbuffer's graph with typed access to tensors, constants and options."""

    def __init__(self, info: ModelInfo):
        self.info = info
        self.path = info.path
        self.model = parse_flatbuffer(info.path, info.data)
        self.graph = self.model.subgraphs[0]
        self.op_names = operator_names(info.path, self.model)

    def dtype(self, index: int) -> str:
        return TYPE_NAMES.get(self.graph.tensors[index].type, "?")

    def shape(self, index: int) -> tuple[int, ...]:
        shape = self.graph.tensors[index].shape
        return tuple(int(d) for d in shape) if shape is not None else ()

    def quantization(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        quant = self.graph.tensors[index].quantization
        if quant is None or quant.scale is None or len(quant.scale) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        return np.asarray(quant.scale, np.float32), np.asarray(quant.zeroPoint, np.int64)

    def tensor(self, index: int) -> Tensor:
        scales, zeros = self.quantization(index)
        name = self.dtype(index)
        if name != "INT8":
            raise HostgenError(
                f"model {self.path} has an {name} activation tensor ({self.tensor_name(index)}); the faultline engine runs "
                "int8 activations only: convert with full-integer int8 quantization (no 16x8 mode)"
            )
        if len(scales) != 1:
            raise HostgenError(f"model {self.path}: activation {self.tensor_name(index)} has no per-tensor quantization; re-export it")
        return Tensor(index, self.shape(index), float(scales[0]), int(zeros[0]))

    def tensor_name(self, index: int) -> str:
        name = self.graph.tensors[index].name
        return name.decode(errors="replace") if isinstance(name, bytes) else str(name)

    def constant(self, index: int) -> np.ndarray | None:
        tensor = self.graph.tensors[index]
        buffer = self.model.buffers[tensor.buffer]
        if buffer.data is not None and len(buffer.data):
            raw = np.asarray(buffer.data, np.uint8).tobytes()
        elif buffer.offset:
            raw = self.info.data[buffer.offset : buffer.offset + buffer.size]
        else:
            return None
        dtypes = {"INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "INT16": np.int16}
        name = self.dtype(index)
        if name not in dtypes:
            raise HostgenError(f"model {self.path}: constant {self.tensor_name(index)} is {name}; the engine reads int8/int32 constants only")
        return np.frombuffer(raw, dtypes[name]).reshape(self.shape(index) or ())


def lower(info: ModelInfo, name: str) -> Graph:
    reader = _Reader(info)
    graph = reader.graph
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise HostgenError(
            f"model {info.path} has {len(graph.inputs)} input(s) and {len(graph.outputs)} output(s); the faultline engine "
            "runs single-input, single-output models: export one input tensor and one output tensor"
        )
    skipped = _shape_arithmetic(reader)
    operators = [op for index, op in enumerate(graph.operators or []) if index not in skipped]
    for op in operators:
        op_name = reader.op_names[op.opcodeIndex]
        if op_name not in SUPPORTED_OPS:
            raise UnsupportedOp(
                f"model {info.path} uses {op_name}, which the faultline engine cannot run on stock MicroPython; "
                f"the build keeps its TFLM arrays and the fallback decides (engine ops: {', '.join(SUPPORTED_OPS)})"
            )
    tensors: dict[int, Tensor] = {}
    ops = []
    for op in operators:
        lowered = _lower_op(reader, op, reader.op_names[op.opcodeIndex])
        for index in (*lowered.inputs, lowered.output):
            tensors[index] = reader.tensor(index)
        ops.append(lowered)
    for index in (graph.inputs[0], graph.outputs[0]):
        tensors.setdefault(int(index), reader.tensor(int(index)))
    result = Graph(name, info.path, info.sha256, tensors, ops, int(graph.inputs[0]), int(graph.outputs[0]))
    for op in ops:
        _check_accumulator(info.path, result, op)
    return result


def _shape_arithmetic(reader: _Reader) -> set[int]:
    """Operators that only compute RESHAPE's shape operand (Keras Flatten emits SHAPE, STRIDED_SLICE and PACK).

    The engine takes every shape from the tensors, so these int32 computations are skipped.
    """
    operators = reader.graph.operators or []
    consumers: dict[int, list[tuple[int, int]]] = {}
    for index, op in enumerate(operators):
        for position, tensor in enumerate(op.inputs):
            consumers.setdefault(int(tensor), []).append((index, position))
    graph_outputs = {int(t) for t in reader.graph.outputs}
    skipped: set[int] = set()

    def only_shapes(tensor: int) -> bool:
        uses = consumers.get(tensor, [])
        return (
            reader.dtype(tensor) == "INT32" and tensor not in graph_outputs and bool(uses)
            and all(user in skipped or (reader.op_names[operators[user].opcodeIndex] == "RESHAPE" and position == 1)
                    for user, position in uses)
        )

    changed = True
    while changed:
        changed = False
        for index, op in enumerate(operators):
            if index not in skipped and all(only_shapes(int(t)) for t in op.outputs):
                skipped.add(index)
                changed = True
    return skipped


def _options(op):
    return op.builtinOptions


def _activation_range(reader: _Reader, activation: int, output: Tensor) -> tuple[int, int]:
    """CalculateActivationRangeQuantized (the quantize lambda divides in float32)."""
    if activation not in ACTIVATIONS:
        raise HostgenError(f"model {reader.path} fuses activation {activation} (TANH/SIGN_BIT); the engine fuses only RELU, RELU6 and RELU_N1_TO_1")

    def quantize(value: float) -> int:
        return output.zero_point + fp.tflite_round_float32(np.float32(value) / np.float32(output.scale))

    name = ACTIVATIONS[activation]
    if name == "RELU":
        return max(-128, quantize(0.0)), 127
    if name == "RELU6":
        return max(-128, quantize(0.0)), min(127, quantize(6.0))
    if name == "RELU_N1_TO_1":
        return max(-128, quantize(-1.0)), min(127, quantize(1.0))
    return -128, 127


def _padding(padding: int, stride: int, dilation: int, in_size: int, filter_size: int, out_size: int) -> int:
    """ComputePaddingWithOffset: the leading pad (TFLM's reference kernels use only this half)."""
    if padding == schema.Padding.VALID:
        return 0
    effective = (filter_size - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def _requantization(multipliers_shifts: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Per-channel MultiplyByQuantizedMultiplier constants: significand, left shift, right shift."""
    multiplier = np.array([m for m, _ in multipliers_shifts], np.int64)
    shift = np.array([s for _, s in multipliers_shifts], np.int64)
    return {"multiplier": multiplier, "shift": shift}


def _conv_like(reader: _Reader, op, op_name: str) -> Op:
    options = _options(op)
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    weights = reader.constant(op.inputs[1])
    if weights is None:
        raise HostgenError(f"model {reader.path}: {op_name} has non-constant weights; the engine needs constant filters")
    if len(source.shape) != 4 or source.shape[0] != 1:
        raise HostgenError(f"model {reader.path}: {op_name} input shape {source.shape} is not (1, H, W, C); export with batch 1")
    _, in_h, in_w, in_c = source.shape
    _, out_h, out_w, out_c = target.shape
    _, k_h, k_w, _ = weights.shape
    depthwise = op_name == "DEPTHWISE_CONV_2D"
    if not depthwise and weights.shape[3] != in_c:
        raise HostgenError(f"model {reader.path}: grouped CONV_2D ({in_c} input channels, filter depth {weights.shape[3]}) is not supported")
    bias = _bias(reader, op, out_c)
    filter_scales, filter_zeros = reader.quantization(op.inputs[1])
    if np.any(filter_zeros != 0):
        raise HostgenError(f"model {reader.path}: {op_name} weights are not symmetric (zero point != 0); TFLM int8 requires symmetric weights")
    pairs = []
    for channel in range(out_c):
        filter_scale = float(filter_scales[channel if len(filter_scales) > 1 else 0])
        pairs.append(fp.quantize_multiplier(float(np.float32(source.scale)) * filter_scale / float(np.float32(target.scale))))
    act_min, act_max = _activation_range(reader, options.fusedActivationFunction, target)
    dilation_h, dilation_w = max(options.dilationHFactor, 1), max(options.dilationWFactor, 1)
    params = dict(
        in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, k_h=k_h, k_w=k_w,
        stride_h=options.strideH, stride_w=options.strideW, dilation_h=dilation_h, dilation_w=dilation_w,
        pad_top=_padding(options.padding, options.strideH, dilation_h, in_h, k_h, out_h),
        pad_left=_padding(options.padding, options.strideW, dilation_w, in_w, k_w, out_w),
        input_zero_point=source.zero_point, output_zero_point=target.zero_point, act_min=act_min, act_max=act_max,
    )
    if depthwise:
        params["depth_multiplier"] = out_c // in_c
        unit_macs = out_c * k_h * k_w
        filters = np.ascontiguousarray(weights.reshape(k_h, k_w, out_c).transpose(2, 0, 1))  # (out_c, k_h, k_w)
    else:
        unit_macs = out_c * k_h * k_w * in_c
        filters = np.ascontiguousarray(weights)  # (out_c, k_h, k_w, in_c)
    return Op(
        "depthwise" if depthwise else "conv", op_name, (source.index,), target.index, params,
        {"weights": filters.astype(np.int8), "bias": bias, **_requantization(pairs)}, units=out_h * out_w, unit_macs=unit_macs,
    )


def _bias(reader: _Reader, op, channels: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(channels, np.int64)
    bias = reader.constant(op.inputs[2])
    if bias is None or bias.dtype != np.int32:
        raise HostgenError(f"model {reader.path}: bias {reader.tensor_name(op.inputs[2])} is not a constant int32 tensor; re-export with int8 quantization")
    return bias.astype(np.int64).reshape(channels)


def _fully_connected(reader: _Reader, op) -> Op:
    options = _options(op)
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    weights = reader.constant(op.inputs[1])
    if weights is None or weights.ndim != 2:
        raise HostgenError(f"model {reader.path}: FULLY_CONNECTED needs constant 2-D weights")
    out_c, depth = weights.shape
    batches = source.size // depth
    filter_scales, filter_zeros = reader.quantization(op.inputs[1])
    if np.any(filter_zeros != 0):
        raise HostgenError(f"model {reader.path}: FULLY_CONNECTED weights are not symmetric; TFLM int8 requires symmetric weights")
    if len(filter_scales) > 1:
        pairs = [fp.quantize_multiplier(float(np.float32(source.scale)) * float(s) / float(np.float32(target.scale))) for s in filter_scales]
    else:  # GetQuantizedConvolutionMultipler multiplies the two scales in float32 first
        product = float(np.float32(source.scale) * np.float32(filter_scales[0]))
        pairs = [fp.quantize_multiplier(product / float(np.float32(target.scale)))] * out_c
    act_min, act_max = _activation_range(reader, options.fusedActivationFunction, target)
    params = dict(batches=batches, depth=depth, out_c=out_c, input_zero_point=source.zero_point,
                  output_zero_point=target.zero_point, act_min=act_min, act_max=act_max)
    arrays = {"weights": weights.astype(np.int8), "bias": _bias(reader, op, out_c), **_requantization(pairs)}
    return Op("fully_connected", "FULLY_CONNECTED", (source.index,), target.index, params, arrays, units=batches * out_c, unit_macs=depth)


def _pool(reader: _Reader, op, op_name: str) -> Op:
    options = _options(op)
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    if len(source.shape) != 4 or source.shape[0] != 1:
        raise HostgenError(f"model {reader.path}: {op_name} input shape {source.shape} is not (1, H, W, C); export with batch 1")
    _, in_h, in_w, channels = source.shape
    _, out_h, out_w, _ = target.shape
    act_min, act_max = _activation_range(reader, options.fusedActivationFunction, target)
    params = dict(
        in_h=in_h, in_w=in_w, channels=channels, out_h=out_h, out_w=out_w, k_h=options.filterHeight, k_w=options.filterWidth,
        stride_h=options.strideH, stride_w=options.strideW,
        pad_top=_padding(options.padding, options.strideH, 1, in_h, options.filterHeight, out_h),
        pad_left=_padding(options.padding, options.strideW, 1, in_w, options.filterWidth, out_w),
        act_min=act_min, act_max=act_max,
    )
    kind = "max_pool" if op_name == "MAX_POOL_2D" else "average_pool"
    return Op(kind, op_name, (source.index,), target.index, params, {}, units=out_h * out_w, unit_macs=channels * options.filterHeight * options.filterWidth)


def _reduce(reader: _Reader, op, op_name: str) -> Op:
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    axes = reader.constant(op.inputs[1])
    if axes is None:
        raise HostgenError(f"model {reader.path}: {op_name} has a non-constant axis; the engine needs constant axes")
    rank = len(source.shape)
    axes = sorted({int(a) % rank for a in np.atleast_1d(axes)})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise HostgenError(f"model {reader.path}: {op_name} over axes {axes} of shape {source.shape}: the engine reduces contiguous axes only")
    outer = int(np.prod(source.shape[: axes[0]], dtype=np.int64))
    count = int(np.prod(source.shape[axes[0] : axes[-1] + 1], dtype=np.int64))
    inner = int(np.prod(source.shape[axes[-1] + 1 :], dtype=np.int64))
    params = dict(outer=outer, count=count, inner=inner)
    if op_name == "REDUCE_MAX":
        return Op("reduce_max", op_name, (source.index,), target.index, params, {}, units=outer * inner, unit_macs=count)
    # QuantizedMeanOrSum folds 1/count into the multiplier. The pinned TFLM takes this path even when input and
    # output share their quantization (older releases divided the sum instead; the zoo's mean_same_quantization
    # model tells the two apart).
    multiplier, shift = fp.quantize_multiplier(float(np.float32(source.scale)) / float(np.float32(target.scale)))
    divide_shift = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << divide_shift) // count
    shift -= divide_shift
    params.update(input_zero_point=source.zero_point, output_zero_point=target.zero_point)
    arrays = {"multiplier": np.array([multiplier], np.int64), "shift": np.array([shift], np.int64)}
    return Op("mean", op_name, (source.index,), target.index, params, arrays, units=outer * inner, unit_macs=count)


def _binary(reader: _Reader, op, op_name: str) -> Op:
    options = _options(op)
    target = reader.tensor(op.outputs[0])
    operands = []
    for index in op.inputs[:2]:
        operands.append((reader.tensor(index), reader.constant(index)))
    sizes = [t.size for t, _ in operands]
    if any(size not in (1, target.size) for size in sizes):
        raise HostgenError(
            f"model {reader.path}: {op_name} broadcasts shapes {operands[0][0].shape} and {operands[1][0].shape}; "
            "the engine broadcasts only a single value against a tensor"
        )
    act_min, act_max = _activation_range(reader, options.fusedActivationFunction, target)
    (first, first_value), (second, second_value) = operands
    params = dict(count=target.size, first_step=int(first.size > 1), second_step=int(second.size > 1),
                  first_offset=-first.zero_point, second_offset=-second.zero_point, output_zero_point=target.zero_point,
                  act_min=act_min, act_max=act_max)
    arrays: dict[str, np.ndarray] = {}
    inputs = []
    for role, tensor, value in (("first", first, first_value), ("second", second, second_value)):
        if value is not None:
            arrays[f"{role}_constant"] = value.astype(np.int8).reshape(-1)
        else:
            inputs.append(tensor.index)
    params["first_is_constant"] = int(first_value is not None)
    params["second_is_constant"] = int(second_value is not None)
    s1, s2, so = (float(np.float32(t.scale)) for t in (first, second, target))
    if op_name == "ADD":
        left_shift = 20
        twice_max_input_scale = 2 * max(s1, s2)
        scales = (s1 / twice_max_input_scale, s2 / twice_max_input_scale, twice_max_input_scale / ((1 << left_shift) * so))
        for role, real in zip(("first", "second", "output"), scales):
            multiplier, shift = fp.quantize_multiplier(real)
            if shift > 0:
                raise HostgenError(f"model {reader.path}: ADD's {role} rescale {real:.3g} is not below one; TFLM refuses it too")
            arrays[f"{role}_multiplier"] = np.array([multiplier], np.int64)
            arrays[f"{role}_shift"] = np.array([shift], np.int64)
        params["left_shift"] = left_shift
        kind = "add"
    else:
        multiplier, shift = fp.quantize_multiplier(s1 * s2 / so)
        arrays["multiplier"] = np.array([multiplier], np.int64)
        arrays["shift"] = np.array([shift], np.int64)
        kind = "mul"
    if not inputs:
        raise HostgenError(f"model {reader.path}: {op_name} has two constant operands; fold it before export")
    return Op(kind, op_name, tuple(inputs), target.index, params, arrays, units=target.size, unit_macs=1)


def _softmax(reader: _Reader, op) -> Op:
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    depth = source.shape[-1]
    if depth > MAX_SOFTMAX_DEPTH:
        raise HostgenError(f"model {reader.path}: SOFTMAX over {depth} classes; the engine's 32-bit softmax takes at most {MAX_SOFTMAX_DEPTH}")
    if target.zero_point != -128:
        raise HostgenError(f"model {reader.path}: SOFTMAX output zero point {target.zero_point} is not -128; TFLM int8 softmax needs -128")
    scaled_diff_integer_bits = 5
    beta = float(np.float32(_options(op).beta))
    real = min(beta * float(np.float32(source.scale)) * (1 << (31 - scaled_diff_integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = fp.quantize_multiplier(real)
    diff_min = -fp.calculate_input_radius(scaled_diff_integer_bits, left_shift)
    differences = -np.arange(256, dtype=np.int64)
    valid = differences >= diff_min
    rescaled = fp.srdhm(np.where(valid, differences, 0) * (1 << left_shift), multiplier)
    exp = np.where(valid, fp.exp_on_negative_values(rescaled, scaled_diff_integer_bits), 0)
    exp_accumulated = fp.rounding_divide_by_pot(exp, 12)  # Rescale<kAccumulationIntegerBits = 12>
    params = dict(rows=source.size // depth, depth=depth)
    arrays = {"exp": exp.astype(np.int64), "exp_accumulated": exp_accumulated.astype(np.int64)}
    return Op("softmax", "SOFTMAX", (source.index,), target.index, params, arrays, units=source.size // depth, unit_macs=3 * depth)


def _lookup(reader: _Reader, op, op_name: str) -> Op:
    """LOGISTIC and QUANTIZE map each int8 value independently: a 256-entry table, built by TFLM's algorithm."""
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    values = np.arange(-128, 128, dtype=np.int64)
    if op_name == "QUANTIZE":
        multiplier, shift = fp.quantize_multiplier(float(np.float32(source.scale)) / float(np.float32(target.scale)))
        table = np.clip(fp.multiply_by_quantized_multiplier(values - source.zero_point, multiplier, shift) + target.zero_point, -128, 127)
    else:
        table = _logistic_table(reader, source, target, values)
    return Op("lookup", op_name, (source.index,), target.index, dict(count=source.size),
              {"table": table.astype(np.int8)}, units=source.size, unit_macs=1)


def _logistic_table(reader: _Reader, source: Tensor, target: Tensor, values: np.ndarray) -> np.ndarray:
    if target.zero_point != -128:
        raise HostgenError(f"model {reader.path}: LOGISTIC output zero point {target.zero_point} is not -128; TFLM int8 logistic needs -128")
    input_integer_bits = 4
    import math

    significand, left_shift = math.frexp(float(np.float32(source.scale)) * (1 << (31 - input_integer_bits)))
    multiplier = fp._round_half_away(significand * (1 << 31))
    radius = fp.calculate_input_radius(input_integer_bits, left_shift, 31)
    centred = values - source.zero_point
    inside = (centred > -radius) & (centred < radius)
    in_q4 = fp.multiply_by_quantized_multiplier(np.where(inside, centred, 0), multiplier, left_shift)
    out_q0 = fp.logistic(in_q4, input_integer_bits)
    scaled = np.clip(fp.rounding_divide_by_pot(out_q0, 31 - 8) - 128, -128, 127)
    return np.where(centred <= -radius, -128, np.where(centred >= radius, 127, scaled))


def _alias(reader: _Reader, op, op_name: str) -> Op:
    source, target = reader.tensor(op.inputs[0]), reader.tensor(op.outputs[0])
    if source.size != target.size:
        raise HostgenError(f"model {reader.path}: {op_name} changes the element count ({source.size} -> {target.size}); re-export it")
    return Op("alias", op_name, (source.index,), target.index, {}, {}, units=0, unit_macs=0)


def _lower_op(reader: _Reader, op, op_name: str) -> Op:
    if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return _conv_like(reader, op, op_name)
    if op_name == "FULLY_CONNECTED":
        return _fully_connected(reader, op)
    if op_name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return _pool(reader, op, op_name)
    if op_name in ("MEAN", "REDUCE_MAX"):
        return _reduce(reader, op, op_name)
    if op_name in ("ADD", "MUL"):
        return _binary(reader, op, op_name)
    if op_name == "SOFTMAX":
        return _softmax(reader, op)
    if op_name in LOOKUP_OPS:
        return _lookup(reader, op, op_name)
    return _alias(reader, op, op_name)


def _int8_deviation(tensor: Tensor) -> int:
    """The largest |x - zero_point| an int8 tensor can hold."""
    return max(127 - tensor.zero_point, tensor.zero_point + 128)


def _check_accumulator(path: Path, graph: Graph, op: Op) -> None:
    """Refuse a layer whose worst-case int32 accumulator (or its left-shifted form) could leave 31 bits."""
    if op.kind in ("conv", "depthwise", "fully_connected"):
        deviation = _int8_deviation(graph.tensors[op.inputs[0]])
        weights = np.abs(op.arrays["weights"].astype(np.int64)).reshape(len(op.arrays["bias"]), -1)
        worst = deviation * weights.sum(axis=1) + np.abs(op.arrays["bias"])
    elif op.kind == "mean":
        worst = np.array([op.params["count"] * 255])
    elif op.kind == "mul":
        worst = np.array([255 * 255])
    elif op.kind == "add":
        worst = np.array([255 << op.params["left_shift"]])
    else:
        return
    worst = worst * (1 << np.maximum(op.arrays.get("shift", np.zeros(1, np.int64)), 0))
    if np.any(worst >= ACCUMULATOR_LIMIT):
        raise HostgenError(
            f"model {path}: {op.tflite_op} writing {graph.tensors[op.output].shape} can reach an accumulator of "
            f"{int(worst.max()):,}, beyond 31 bits, so no 32-bit board computes it exactly; use fewer inputs per output "
            "or smaller weights (retrain or requantize)"
        )

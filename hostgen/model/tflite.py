"""Read a .tflite flatbuffer without TensorFlow: ops, tensors, quantization.

The checks here run before anything is generated: a file that is not a model,
a model that is not int8, or an op TFLM does not register stops the run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from hostgen.errors import HostgenError
from hostgen.model.tflm_ops import CUSTOM_RESOLVER_METHODS, RESOLVER_METHODS

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
INTEGER_ACTIVATIONS = ("INT8", "INT16")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    is_constant: bool

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    data: bytes
    sha256: str
    ops: tuple[str, ...]
    op_counts: dict[str, int]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    tensors: tuple[TensorInfo, ...]

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    @property
    def resolver_methods(self) -> list[str]:
        return [RESOLVER_METHODS.get(op) or CUSTOM_RESOLVER_METHODS[op] for op in self.ops]

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(t.shape)) for t in self.tensors if t.is_constant and t.shape)

    @property
    def per_channel(self) -> bool:
        return any(t.per_channel for t in self.tensors if t.is_constant)


def load_model(path: str | Path) -> ModelInfo:
    """Parse and check a .tflite file; every failure is a one-line HostgenError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HostgenError(f"cannot read model {path}: {exc.strerror}") from None
    model = parse_flatbuffer(path, data)
    if len(model.subgraphs) != 1:
        raise HostgenError(
            f"model {path} has {len(model.subgraphs)} subgraphs; hostgen supports single-subgraph models "
            "(export without control flow)"
        )
    graph = model.subgraphs[0]
    _check_references(path, model, graph)
    ops = operator_names(path, model)
    _check_tflm_supports(path, ops)
    tensors = tuple(_tensor_info(model, t) for t in graph.tensors)
    _check_integer(path, graph, tensors)
    counts: dict[str, int] = {}
    for op in graph.operators or []:
        name = ops[op.opcodeIndex]
        counts[name] = counts.get(name, 0) + 1
    used = tuple(dict.fromkeys(ops[op.opcodeIndex] for op in graph.operators or []))
    return ModelInfo(
        path=path,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        ops=used,
        op_counts=counts,
        inputs=tuple(tensors[i] for i in graph.inputs),
        outputs=tuple(tensors[i] for i in graph.outputs),
        tensors=tensors,
    )


def parse_flatbuffer(path: Path, data: bytes):
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise HostgenError(
            f"model {path} is not a .tflite flatbuffer (no 'TFL3' identifier); "
            "give a model written by the TFLite converter"
        )
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        for buffer in model.buffers or []:
            if buffer.offset and buffer.offset + buffer.size > len(data):
                raise IndexError("buffer beyond end of file")
    except Exception:  # the flatbuffer reader raises anything on bad offsets
        raise HostgenError(
            f"model {path} is corrupt or truncated: its flatbuffer cannot be read ({len(data)} bytes); "
            "re-export it"
        ) from None
    if not model.subgraphs:
        raise HostgenError(f"model {path} has no subgraph; re-export it")
    return model


def _check_references(path: Path, model, graph) -> None:
    """Every index in the graph points at something that exists (damage often breaks one)."""
    tensor_count = len(graph.tensors or [])
    buffer_count = len(model.buffers or [])
    code_count = len(model.operatorCodes or [])
    operators = graph.operators or []
    tensor_refs = [*(graph.inputs if graph.inputs is not None else []), *(graph.outputs if graph.outputs is not None else [])]
    for op in operators:
        tensor_refs += [i for i in (op.inputs if op.inputs is not None else []) if i != -1]
        tensor_refs += list(op.outputs if op.outputs is not None else [])
    broken = (
        any(not 0 <= op.opcodeIndex < code_count for op in operators)
        or any(not 0 <= int(i) < tensor_count for i in tensor_refs)
        or any(not 0 <= t.buffer < buffer_count for t in graph.tensors or [])
        or any(d < -1 for t in graph.tensors or [] for d in (t.shape if t.shape is not None else []))
        or graph.inputs is None
        or graph.outputs is None
        or len(graph.inputs) == 0
        or len(graph.outputs) == 0
    )
    if broken:
        raise HostgenError(f"model {path} is corrupt: its graph refers to operators or tensors that do not exist; re-export it")


def operator_names(path: Path, model) -> list[str]:
    names = []
    for code in model.operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = OP_NAMES.get(builtin)
        if name == "CUSTOM":
            name = (code.customCode or b"").decode(errors="replace")
        if name is None:
            raise HostgenError(f"model {path} uses operator code {builtin}, unknown to this schema; re-export it")
        names.append(name)
    return names


def _check_tflm_supports(path: Path, ops: list[str]) -> None:
    missing = sorted({op for op in ops if op not in RESOLVER_METHODS and op not in CUSTOM_RESOLVER_METHODS})
    if missing:
        raise HostgenError(
            f"model {path} uses op(s) TFLM does not register: {', '.join(missing)}; "
            "replace them with supported layers (Conv1D/Conv2D, Dense, pooling, ReLU, Softmax)"
        )


def _tensor_info(model, tensor) -> TensorInfo:
    quant = tensor.quantization
    scales = tuple(float(s) for s in quant.scale) if quant is not None and quant.scale is not None else ()
    zeros = tuple(int(z) for z in quant.zeroPoint) if quant is not None and quant.zeroPoint is not None else ()
    buffer = model.buffers[tensor.buffer] if model.buffers and tensor.buffer < len(model.buffers) else None
    constant = buffer is not None and (buffer.data is not None or bool(buffer.offset))
    name = tensor.name.decode(errors="replace") if isinstance(tensor.name, bytes) else str(tensor.name)
    shape = tuple(int(d) for d in tensor.shape) if tensor.shape is not None else ()
    return TensorInfo(name, shape, TYPE_NAMES.get(tensor.type, str(tensor.type)), scales, zeros, constant)


def _check_integer(path: Path, graph, tensors: tuple[TensorInfo, ...]) -> None:
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for index in indices:
            tensor = tensors[index]
            if tensor.dtype not in INTEGER_ACTIVATIONS:
                raise HostgenError(
                    f"model {path} is not int8: its {role} '{tensor.name}' is {tensor.dtype}; "
                    "convert with full-integer quantization (int8 input and output, TFLITE_BUILTINS_INT8)"
                )
    for tensor in tensors:
        if tensor.dtype in ("FLOAT32", "FLOAT16", "FLOAT64"):
            raise HostgenError(
                f"model {path} is not int8: tensor '{tensor.name}' is {tensor.dtype}; "
                "convert with full-integer quantization and a representative dataset"
            )

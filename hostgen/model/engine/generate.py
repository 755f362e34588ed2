"""Compile a lowered graph into model_<name>.py (stock MicroPython, viper) and model_<name>.c/.h (C99)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from hostgen import __version__
from hostgen.codegen.render import check_identifier, display_path, file_sha256
from hostgen.model.engine import TFLM_VERSION
from hostgen.model.engine.lowering import Graph, lower
from hostgen.model.engine.plan import ARENA, INPUT, MemoryPlan, plan_memory
from hostgen.model.engine.recipe import (
    BAND_LEVEL_SPAN,
    BAND_SHIFT,
    BAND_TAPS_Q12,
    NORMALISED_SHIFT,
    RECIPROCAL_NUMERATOR,
    Recipe,
    make_recipe,
)
from hostgen.model.tflite import ModelInfo

ENGINE_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_IMPORTS = {"model.py.j2": ("viper_fixedpoint.j2",)}
SLICE_MACS = 4000
RECORD_BYTES = 16  # bias, multiplier, left shift, right shift: four little-endian int32
MAX_RECONSTRUCTION_ELEMENTS = (1 << 30) // (255 * 255)  # keeps the squared error a 31-bit small int


@dataclass
class CompiledModel:
    graph: Graph
    plan: MemoryPlan
    recipe: Recipe
    kind: str
    classes: int
    weight_bytes: int
    files: dict[str, bytes]

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def figures(self) -> dict:
        return {
            "engine_activation_bytes": self.plan.activation_bytes,
            "engine_arena_bytes": self.plan.arena_bytes,
            "engine_weight_bytes": self.weight_bytes,
            "engine_scratch_bytes": 0,
            "engine_macs": self.graph.macs,
            "kind": self.kind,
            "tflm_version": TFLM_VERSION,
        }


def compile_model(model: ModelInfo, name: str, command: str, recipe_name: str = "centred_full_scale",
                  kind: str | None = None, slice_macs: int = SLICE_MACS) -> CompiledModel:
    check_identifier(name)
    graph = lower(model, name)
    plan = plan_memory(graph)
    recipe = make_recipe(recipe_name, graph.input_tensor)
    kind = kind or detect_kind(graph)
    ops = [_op_context(graph, plan, index) for index, op in enumerate(graph.ops) if op.kind != "alias"]
    score_map = _score_map(graph, kind)
    if kind == "reconstruction" and graph.output_tensor.size > MAX_RECONSTRUCTION_ELEMENTS:
        from hostgen.errors import HostgenError

        raise HostgenError(f"model {model.path}: a reconstruction over {graph.output_tensor.size} values can overflow 31 bits; "
                           f"use at most {MAX_RECONSTRUCTION_ELEMENTS}")
    weight_bytes = sum(op["stored_bytes"] for op in ops)
    context = {
        "name": name, "NAME": name.upper(), "sha256": model.sha256, "tflm_version": TFLM_VERSION,
        "input_shape": tuple(graph.input_tensor.shape), "output_shape": tuple(graph.output_tensor.shape),
        "kind": kind, "classes": graph.output_tensor.size if kind == "classifier" else 0,
        "slice_macs": slice_macs, "plan": plan, "ops": ops, "macs": graph.macs, "weight_bytes": weight_bytes,
        "recipe": {
            "name": recipe.name, "window": recipe.window, "channels": recipe.channels, "centred": recipe.centred,
            "normalised": recipe.normalised, "reciprocal_numerator": RECIPROCAL_NUMERATOR, "shift": NORMALISED_SHIFT,
            "banded": recipe.banded, "band_taps": BAND_TAPS_Q12, "band_shift": BAND_SHIFT, "band_level_span": BAND_LEVEL_SPAN,
            "rounding": 1 << (NORMALISED_SHIFT - 1),
            "zero_point": recipe.zero_point, "constants_c": ", ".join(map(str, recipe.record)),
            "constants_py": _py_bytes(_records([recipe.record])),
        },
        "score_map_c": _c_list(score_map),
        "score_map_py": _py_bytes(_score_map_bytes(score_map, kind)),
    }
    outputs = {f"model_{name}.py": "model.py.j2", f"model_{name}.c": "model.c.j2", f"model_{name}.h": "model.h.j2"}
    files = _render(outputs, [("model", model.path)], command, context)
    return CompiledModel(graph, plan, recipe, kind, context["classes"], weight_bytes, files)


def render_harness(compiled: CompiledModel, command: str) -> bytes:
    """engine_harness.c: model_<name>.c over files, for host runs and the emulated Cortex-M4."""
    context = {"name": compiled.name, "NAME": compiled.name.upper()}
    return _render({"engine_harness.c": "harness.c.j2"}, [("model", compiled.graph.path)], command, context)["engine_harness.c"]


def detect_kind(graph: Graph) -> str:
    """classifier: a softmax output (class 0 normal); reconstruction: output shaped like the input; else tensor."""
    last = [op for op in graph.ops if op.kind != "alias"][-1]
    if last.kind == "softmax" and last.params["rows"] == 1:
        return "classifier"
    if graph.output_tensor.shape == graph.input_tensor.shape:
        return "reconstruction"
    return "tensor"


def scores(compiled: CompiledModel, inputs: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The module's scores() on host: (scores (n, k), best (n,)) from int8 input and output tensors.

    classifier: k = classes, Q8 probabilities, best = the first argmax; reconstruction: k = 1, the sum of
    squared differences between OUTPUT mapped into the input's quantization and INPUT; tensor: the outputs.
    """
    score_map = np.array(_score_map(compiled.graph, compiled.kind), np.int64)
    x = inputs.reshape(len(inputs), -1).astype(np.int64)
    y = outputs.reshape(len(outputs), -1).astype(np.int64)
    if compiled.kind == "classifier":
        values = score_map[y + 128]
        return values, values.argmax(axis=1)
    if compiled.kind == "reconstruction":
        return ((score_map[y + 128] - x) ** 2).sum(axis=1, keepdims=True), np.zeros(len(y), np.int64)
    return y, np.zeros(len(y), np.int64)


def _score_map(graph: Graph, kind: str) -> list[int]:
    """Per output int8 value: its class probability in Q8 (classifier) or its value in the input's quantization."""
    q = np.arange(-128, 128, dtype=np.float64)
    out, source = graph.output_tensor, graph.input_tensor
    if kind == "classifier":
        return [int(v) for v in np.clip(np.round((q - out.zero_point) * out.scale * 256), 0, 256)]
    if kind == "reconstruction":
        return [int(v) for v in np.clip(np.round((q - out.zero_point) * out.scale / source.scale) + source.zero_point, -128, 127)]
    return [0] * 256


def _score_map_bytes(score_map: list[int], kind: str) -> bytes:
    if kind == "classifier":
        return np.array(score_map, "<u2").tobytes()
    return np.array(score_map, np.int8).tobytes()


def _buffer(location, name: str, offset_only: bool = False) -> dict:
    py = {INPUT: "INPUT", ARENA: "_ARENA"}.get(location.buffer, "OUTPUT")
    c = {INPUT: f"{name}_input", ARENA: "arena"}.get(location.buffer, f"{name}_output")
    return {"py": py, "c": c, "offset": location.offset}


def _op_context(graph: Graph, plan: MemoryPlan, index: int) -> dict:
    op = graph.ops[index]
    shapes = " + ".join(str(graph.tensors[i].shape) for i in op.inputs)
    context = {
        "id": index, "kind": op.kind, "tflite_op": op.tflite_op, "params": op.params, "units": op.units,
        "unit_macs": max(op.unit_macs, 1), "summary": f"{shapes} -> {graph.tensors[op.output].shape}",
        "src": [_buffer(plan.locations[i], graph.name) for i in op.inputs], "dst": _buffer(plan.locations[op.output], graph.name),
        "weights": None, "records_c": None, "records_py": None, "records_count": 0, "constants": [],
        "table_c": None, "table_py": None, "exp_c": None, "exp_py": None,
    }
    stored = 0
    if "weights" in op.arrays:
        weights = op.arrays["weights"].reshape(-1).astype(np.int64)
        context.update(weights=weights, weights_c=_c_list(weights), weights_py=_py_bytes((weights + 128).astype(np.uint8).tobytes()))
        stored += len(weights)
    records = _op_records(op)
    if records:
        context.update(records_c=_c_list([v for record in records for v in record]), records_py=_py_bytes(_records(records)),
                       records_count=len(records))
        stored += RECORD_BYTES * len(records)
    if op.kind in ("add", "mul"):
        supplied = iter(context["src"])
        sources = []
        for role in ("first", "second"):
            if op.params[f"{role}_is_constant"]:
                value = op.arrays[f"{role}_constant"].astype(np.int64)
                constant = {"py": f"_K{index}_{role}", "c": f"k{index}_{role}", "offset": 0, "size": len(value),
                            "literal_py": _py_bytes(value.astype(np.int8).tobytes()), "literal_c": _c_list(value)}
                context["constants"].append(constant)
                sources.append(constant)
                stored += len(value)
            else:
                sources.append(next(supplied))
        context["src"] = sources
    if op.kind == "lookup":
        table = op.arrays["table"].astype(np.int64)
        context.update(table_c=_c_list(table), table_py=_py_bytes(table.astype(np.int8).tobytes()))
        stored += 256
    if op.kind == "softmax":
        exp, accumulated = op.arrays["exp"], op.arrays["exp_accumulated"]
        context.update(exp_c=_c_list(exp), exp_accumulated_c=_c_list(accumulated),
                       exp_py=_py_bytes(exp.astype("<i4").tobytes()), exp_accumulated_py=_py_bytes(accumulated.astype("<i4").tobytes()))
        stored += 2 * 4 * 256
    context["stored_bytes"] = stored
    return context


def _op_records(op) -> list[tuple[int, int, int, int]]:
    a = op.arrays

    def record(bias, multiplier, shift):
        return int(bias), int(multiplier), max(int(shift), 0), max(-int(shift), 0)

    if op.kind in ("conv", "depthwise", "fully_connected"):
        return [record(b, m, s) for b, m, s in zip(a["bias"], a["multiplier"], a["shift"])]
    if op.kind in ("mean", "mul"):
        return [record(0, a["multiplier"][0], a["shift"][0])]
    if op.kind == "add":
        return [record(0, a[f"{role}_multiplier"][0], a[f"{role}_shift"][0]) for role in ("first", "second", "output")]
    return []


def _records(records) -> bytes:
    return np.array(records, "<i4").reshape(-1).tobytes()


def _c_list(values, per_line: int = 16) -> str:
    values = [str(int(v)) for v in values]
    lines = [", ".join(values[i : i + per_line]) for i in range(0, len(values), per_line)]
    return "\n    " + ",\n    ".join(lines) + "\n"


def _py_bytes(data: bytes, per_line: int = 48) -> str:
    if not data:
        return "b''"
    chunks = [repr(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "(\n    " + "\n    ".join(chunks) + "\n)"


def _render(outputs: dict[str, str], inputs: list[tuple[str, Path]], command: str, context: dict) -> dict[str, bytes]:
    """As hostgen.codegen.render_templates (the same banner lines), from the engine's template directory."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ENGINE_TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )
    files = {}
    for output, template_name in outputs.items():
        template = env.get_template(template_name)
        template_path = Path(template.filename)
        lines = [
            f"{output}: generated by hostgen {__version__} ({command}). Do not edit: regenerate.",
            *(f"{role} {display_path(path)} sha256 {file_sha256(path)}" for role, path in inputs),
            *(f"template {display_path(path)} sha256 {file_sha256(path)}"
              for path in [template_path, *(ENGINE_TEMPLATES_DIR / name for name in TEMPLATE_IMPORTS.get(template_name, ()))]),
            f"matches {TFLM_VERSION} reference kernels",
        ]
        banners = {"banner_hash": "\n".join(f"# {line}" for line in lines),
                   "banner_c": "/*\n" + "".join(f" * {line}\n" for line in lines) + " */"}
        files[output] = template.render(**banners, **context).encode()
    return files

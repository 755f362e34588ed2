"""Where int8 loses what the float model computes: each layer's output, float (Keras) against int8.

The int8 model runs in tf.lite's interpreter with its reference kernels and every tensor kept
(`experimental_preserve_all_tensors`); each Keras layer's output is matched with the int8
tensor that holds it, and a layer that cannot be matched exactly is reported as such.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from hostgen.model.graph import operators
from hostgen.model.tflite import ModelInfo
from hostgen.model.tflm_run import dequantize, quantize_input

BATCH = 256


def tflite_interpreter(tf, model: ModelInfo, preserve_all_tensors: bool = False):
    """tf.lite's interpreter with its reference kernels (no delegates), as TFLM is compared with."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            model_content=model.data,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=preserve_all_tensors,
        )
    interpreter.allocate_tensors()
    return interpreter


def tflite_tensors(interpreter, model: ModelInfo, x: np.ndarray, tensors: list[int]) -> dict[int, np.ndarray]:
    """Dequantized values of `tensors` for each window of `x`, run one window at a time as on the board."""
    source = model.inputs[0]
    input_index = interpreter.get_input_details()[0]["index"]
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    values: dict[int, list] = {t: [] for t in tensors}
    for sample in x:
        interpreter.set_tensor(input_index, quantize_input(sample, source.scales[0], source.zero_points[0]).reshape(source.shape))
        interpreter.invoke()
        for t in tensors:
            scale, zero_point = details[t]["quantization"]
            values[t].append(dequantize(interpreter.get_tensor(t), scale, zero_point))
    return {t: np.stack(v) for t, v in values.items()}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norms) if norms else float(np.array_equal(a, b))


def _layer_scope(tensor_name: str) -> str | None:
    """The Keras layer's name scope in a converted tensor's name: model/<layer scope>/op."""
    parts = tensor_name.split(";")[0].split("/")
    return parts[1] if len(parts) >= 3 else None


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape if d != 1)


def match_layers(layers, int8: ModelInfo) -> dict[str, int | str]:
    """Layer name -> the int8 tensor holding its output, or why none matches exactly.

    Converted tensors are grouped by the layer name scope in their names (an op whose output
    has none, like a separate softmax, joins its input's group), groups in execution order
    are paired with the layers in order, and a layer's output is its group's last tensor,
    accepted only when the shapes agree.
    """
    groups: dict[str, list[int]] = {}
    scope_of: dict[int, str] = {}
    for op in operators(int8):
        inherited = next((scope_of[i] for i in op.inputs if i in scope_of), None)
        for out in op.outputs:
            scope = _layer_scope(int8.tensors[out].name) or inherited
            if scope:
                scope_of[out] = scope
                groups.setdefault(scope, []).append(out)
    scopes = list(groups)
    matches: dict[str, int | str] = {}
    for layer in layers:
        if not scopes or not re.fullmatch(rf"{re.escape(layer.name)}(_\d+)*", scopes[0]):
            matches[layer.name] = "no int8 tensor carries this layer's name (folded into another op, or renamed)"
            continue
        tensor = groups[scopes.pop(0)][-1]
        float_shape, int8_shape = _squeezed(layer.output.shape[1:]), _squeezed(int8.tensors[tensor].shape[1:])
        if float_shape != int8_shape:
            matches[layer.name] = f"its last int8 tensor '{int8.tensors[tensor].name}' has shape {int8_shape}, the layer {float_shape}"
        elif not int8.tensors[tensor].scales:
            matches[layer.name] = f"its last int8 tensor '{int8.tensors[tensor].name}' is {int8.tensors[tensor].dtype} without a scale"
        else:
            matches[layer.name] = tensor
    return matches


def layer_distances(tf, keras, int8: ModelInfo, x: np.ndarray) -> list[dict]:
    """Float vs int8 per layer: relative RMSE and cosine of each layer's output, or why not compared."""
    layers = [layer for layer in keras.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    try:
        probe = tf.keras.Model(keras.inputs, [layer.output for layer in layers])
    except (ValueError, AttributeError, TypeError) as exc:
        return [{"layer": "all", "note": f"the float model's layer outputs cannot be read ({str(exc).splitlines()[0][:120]})"}]
    float_outputs = probe.predict(x, batch_size=BATCH, verbose=0)
    float_outputs = float_outputs if isinstance(float_outputs, list) else [float_outputs]
    matches = match_layers(layers, int8)
    tensors = [t for t in matches.values() if isinstance(t, int)]
    int8_outputs = tflite_tensors(tflite_interpreter(tf, int8, preserve_all_tensors=True), int8, x, tensors)
    rows = []
    for layer, float_output in zip(layers, float_outputs):
        match = matches[layer.name]
        if isinstance(match, str):
            rows.append({"layer": layer.name, "note": match})
            continue
        int8_output = int8_outputs[match].reshape(float_output.shape)
        rows.append({
            "layer": layer.name,
            "tensor": int8.tensors[match].name.split(";")[0],
            "relative_rmse": round(float(np.sqrt(np.mean((int8_output - float_output) ** 2) / max(np.mean(float_output**2), 1e-30))), 5),
            "cosine": round(cosine(int8_output, float_output), 5),
        })
    return rows

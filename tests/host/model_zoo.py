"""Small models of different shapes, built with real TensorFlow conversion for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hostgen.model import quantize


def _keras():
    return quantize.import_tensorflow().keras


def _representative(shape, seed=0):
    return np.random.default_rng(seed).normal(size=(64, *shape)).astype(np.float32)


def dense(per_channel: bool):
    keras = _keras()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((64,)), layers.Dense(32, activation="relu"), layers.Dense(16, activation="relu"), layers.Dense(2, activation="softmax")]
    )
    return model, _representative((64,))


def conv2d_depthwise():
    keras = _keras()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.DepthwiseConv2D(3, activation="relu"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dense(4, activation="softmax"),
        ]
    )
    return model, _representative((32, 32, 1))


def wide_activations():
    """A Conv1D model whose activations need a large arena (over small boards' budgets)."""
    keras = _keras()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((1024, 1)), layers.Conv1D(48, 5, padding="same", activation="relu"), layers.GlobalAveragePooling1D(), layers.Dense(2)]
    )
    return model, _representative((1024, 1))


def large_weights():
    """~300 KB of weights: larger than any board's model flash region."""
    keras = _keras()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([keras.Input((600,)), layers.Dense(500, activation="relu"), layers.Dense(2)])
    return model, _representative((600,))


def conv2d_same_pooled():
    """SAME padding, strides, max and average pooling at the edges, global max pooling (REDUCE_MAX), per-tensor.

    (A dilated Keras Conv2D converts to SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND, which the engine refuses.)
    """
    keras = _keras()
    keras.utils.set_random_seed(1)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((15, 13, 2)),
            layers.Conv2D(6, 3, strides=2, padding="same", activation="relu6"),
            layers.MaxPooling2D(2, strides=1, padding="same"),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.AveragePooling2D(3, strides=2, padding="same"),
            layers.GlobalMaxPooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    return model, _representative((15, 13, 2))


def residual_logistic():
    """A Conv1D residual (ADD), a gate (MUL of two activations), MEAN and a LOGISTIC output."""
    keras = _keras()
    keras.utils.set_random_seed(2)
    layers = keras.layers
    inputs = keras.Input((64, 1))
    a = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    b = layers.Conv1D(8, 3, padding="same")(a)
    residual = layers.Add()([a, b])
    gated = layers.Multiply()([residual, a])
    pooled = layers.GlobalAveragePooling1D()(gated)
    outputs = layers.Dense(1, activation="sigmoid")(pooled)
    return keras.Model(inputs, outputs), _representative((64, 1))


def autoencoder():
    """A dense autoencoder: output shaped like the input (a reconstruction model)."""
    keras = _keras()
    keras.utils.set_random_seed(3)
    layers = keras.layers
    model = keras.Sequential([keras.Input((32,)), layers.Dense(8, activation="relu"), layers.Dense(32)])
    return model, _representative((32,))


def tanh_dense():
    """TFLM runs int8 TANH; the faultline engine does not (it refuses the model, naming the op)."""
    keras = _keras()
    keras.utils.set_random_seed(4)
    layers = keras.layers
    return keras.Sequential([keras.Input((16,)), layers.Dense(4, activation="tanh")]), _representative((16,))


def two_inputs():
    keras = _keras()
    keras.utils.set_random_seed(5)
    layers = keras.layers
    a, b = keras.Input((8,)), keras.Input((8,))
    model = keras.Model([a, b], layers.Dense(2)(layers.Add()([a, b])))
    data = _representative((8,))
    return model, [data, data]


def two_outputs():
    keras = _keras()
    keras.utils.set_random_seed(6)
    layers = keras.layers
    inputs = keras.Input((8,))
    hidden = layers.Dense(4, activation="relu")(inputs)
    return keras.Model(inputs, [layers.Dense(2)(hidden), layers.Dense(3)(hidden)]), _representative((8,))


def _converted(model, representative, int16_activations=False) -> bytes:
    """Full-integer conversion for models quantize.quantize does not take (several inputs, 16x8 mode)."""
    tf = quantize.import_tensorflow()
    samples = representative if isinstance(representative, list) else [representative]

    def representative_dataset():
        for i in range(32):
            yield [s[i : i + 1] for s in samples]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    if int16_activations:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def with_bias(tflite: bytes, value: int) -> bytes:
    """The model with every int32 bias element set to `value` (to give an accumulator beyond 31 bits)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    graph = model.subgraphs[0]
    for op in graph.operators:
        if len(op.inputs) == 3 and op.inputs[2] >= 0:  # CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: the bias
            tensor = graph.tensors[op.inputs[2]]
            model.buffers[tensor.buffer].data = np.full(tensor.shape[0], value, np.int32).view(np.uint8)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_mean_keeping_quantization(tflite: bytes) -> bytes:
    """The model with each MEAN's output quantized like its input: TFLM's integer-division path."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    graph = model.subgraphs[0]
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.MEAN:
            source, target = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
            target.quantization.scale = list(source.quantization.scale)
            target.quantization.zeroPoint = list(source.quantization.zeroPoint)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def append_requantize(tflite: bytes, scale_factor: float) -> bytes:
    """The model with a QUANTIZE (int8 -> int8) op appended, rescaling its output by `scale_factor`."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    graph = model.subgraphs[0]
    old_output = graph.outputs[0]
    source = graph.tensors[old_output]
    tensor = schema.TensorT()
    tensor.shape = list(source.shape)
    tensor.type = schema.TensorType.INT8
    tensor.name = b"requantized"
    tensor.buffer = 0
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale = [float(source.quantization.scale[0]) * scale_factor]
    tensor.quantization.zeroPoint = [3]
    graph.tensors.append(tensor)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs = [old_output]
    op.outputs = [len(graph.tensors) - 1]
    graph.operators.append(op)
    graph.outputs = [len(graph.tensors) - 1]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def build_zoo(target: Path) -> dict[str, Path]:
    """Write every test model into `target`; returns name -> .tflite path."""
    tf = quantize.import_tensorflow()
    target.mkdir(parents=True, exist_ok=True)
    paths = {}

    def save(name: str, data: bytes) -> None:
        paths[name] = target / f"{name}.tflite"
        paths[name].write_bytes(data)

    for name, (model, data), per_channel in [
        ("dense_per_channel", dense(True), True),
        ("dense_per_tensor", dense(False), False),
        ("conv2d_depthwise", conv2d_depthwise(), True),
        ("wide_activations", wide_activations(), True),
        ("large_weights", large_weights(), True),
        ("conv2d_same_pooled", conv2d_same_pooled(), False),
        ("residual_logistic", residual_logistic(), True),
        ("autoencoder", autoencoder(), True),
    ]:
        save(name, quantize.quantize(model, data, per_channel=per_channel))
    save("autoencoder_requantized", append_requantize(paths["autoencoder"].read_bytes(), 0.37))
    save("mean_same_quantization", with_mean_keeping_quantization(paths["residual_logistic"].read_bytes()))
    save("overflowing_bias", with_bias(paths["conv2d_same_pooled"].read_bytes(), (1 << 31) - 1000))
    save("tanh_dense", quantize.quantize(*tanh_dense()))
    save("two_inputs", _converted(*two_inputs()))
    save("two_outputs", _converted(*two_outputs()))
    save("int16_dense", _converted(*dense(True), int16_activations=True))

    float_model, _ = dense(True)
    save("float_dense", tf.lite.TFLiteConverter.from_keras_model(float_model).convert())

    class TopK(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16], tf.float32)])
        def __call__(self, x):
            return tf.math.top_k(x, k=3).values

    module = TopK()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    save("unsupported_topk", converter.convert())
    keras_path = target / "user_model.keras"
    from hostgen.model.reference import build_keras_model

    build_keras_model().save(keras_path)
    paths["user_model_keras"] = keras_path
    return paths

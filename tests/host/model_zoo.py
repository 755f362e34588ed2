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
    ]:
        save(name, quantize.quantize(model, data, per_channel=per_channel))

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

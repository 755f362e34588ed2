"""Full-int8 post-training quantization of a Keras model (imports TensorFlow)."""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from hostgen.errors import HostgenError
from hostgen.util.native_output import captured_native_output

REPRESENTATIVE_WINDOWS = 300


def import_tensorflow():
    """TensorFlow, imported only by the commands that train or convert (it takes seconds)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with captured_native_output():
        import tensorflow as tf

    return tf


def load_keras(path: Path):
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise HostgenError(f"{path} is not a Keras model (a .keras file is a zip archive); save one with model.save('m.keras')")
    tf = import_tensorflow()
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise HostgenError(f"cannot load Keras model {path}: {str(exc).splitlines()[0][:160]}") from None


def quantize(model, representative: np.ndarray, per_channel: bool = True) -> bytes:
    """Convert a Keras model to an int8 .tflite (int8 input and output).

    `representative` holds float32 inputs in the model's input shape (without the batch
    axis); they set the activation ranges, so they must span what the board will see.
    """
    tf = import_tensorflow()
    expected = tuple(model.inputs[0].shape[1:])
    if tuple(representative.shape[1:]) != expected:
        raise HostgenError(
            f"representative data has windows of shape {tuple(representative.shape[1:])} but the model "
            f"expects {expected}; give calibration data in the model's input shape"
        )
    samples = representative[:REPRESENTATIVE_WINDOWS].astype(np.float32)

    def representative_dataset():
        for window in samples:
            yield [window[np.newaxis]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = not per_channel
    try:
        with captured_native_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and others
        raise HostgenError(
            f"int8 conversion failed: {str(exc).splitlines()[0][:200]}; use layers TFLM supports in int8 (Conv1D, Dense)"
        ) from None

"""Where a build's model comes from: the reference model, a user's .tflite, or a user's .keras."""

from __future__ import annotations

from pathlib import Path

from hostgen.data.recordings import load_representative
from hostgen.errors import HostgenError
from hostgen.model.tflite import ModelInfo, load_model
from hostgen.util.cache import cached_bytes, code_key


def resolve_model(model_arg: str | None, representative: str | None, input_recipe: str, log) -> tuple[ModelInfo, str]:
    """The int8 model to build with, and the default C name for it; a .keras model is converted with
    `representative` windows, else with the reference training windows made into `input_recipe`'s input."""
    if model_arg is None:
        from hostgen.model.reference import MODEL_NAME, reference_tflite

        return load_model(reference_tflite(log)), MODEL_NAME
    path = Path(model_arg)
    if path.is_dir():
        raise HostgenError(f"model {path} is a directory; give a .tflite or .keras file")
    if not path.is_file():
        raise HostgenError(f"model file {path} not found; give a .tflite or .keras file")
    if path.suffix == ".tflite":
        return load_model(path), path.stem
    if path.suffix == ".keras":
        return load_model(_convert_keras(path, representative, input_recipe, log)), path.stem
    raise HostgenError(f"model file {path} has suffix '{path.suffix}'; give an int8 .tflite or a Keras .keras model")


def _convert_keras(path: Path, representative: str | None, input_recipe: str, log) -> Path:
    """The int8 conversion of a .keras model, cached by the model, the representative data and the converter's code."""
    from hostgen.model import quantize

    if representative and not Path(representative).is_file():
        raise HostgenError(f"representative data {representative} not found; give a .npy, or an .npz with x")
    key = code_key(path, Path(representative) if representative else input_recipe.encode(), quantize)
    return cached_bytes("converted", key, ".tflite", lambda: _quantized(path, representative, input_recipe, log))


def _quantized(path: Path, representative: str | None, input_recipe: str, log) -> bytes:
    from hostgen.data import synthetic as dataset
    from hostgen.model import quantize
    from hostgen.model.engine.recipe import FLOAT_INPUTS
    from hostgen.model.reference import RECIPE

    model = quantize.load_keras(path)
    if representative:
        windows = load_representative(Path(representative))
    elif tuple(model.inputs[0].shape[1:]) == (dataset.WINDOW, 1) and input_recipe in FLOAT_INPUTS:
        counts, _ = dataset.make_windows(RECIPE["train_seed"], quantize.REPRESENTATIVE_WINDOWS)
        windows = FLOAT_INPUTS[input_recipe](counts)
    else:
        raise HostgenError(
            f"Keras model {path} takes inputs of shape {tuple(model.inputs[0].shape[1:])} with input recipe "
            f"{input_recipe}, which the reference windows cannot stand for; give representative data with --representative FILE.npy"
        )
    log(f"converting {path} to int8 with {len(windows)} representative windows")
    return quantize.quantize(model, windows)

"""Where a build's model comes from: the reference model, a user's .tflite, or a user's .keras."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from hostgen.errors import HostgenError
from hostgen.paths import CACHE_DIR
from hostgen.tflite_model import ModelInfo, load_model


def resolve_model(model_arg: str | None, calibration: str | None, log) -> tuple[ModelInfo, str]:
    """The int8 model to build with, and the default C name for it."""
    if model_arg is None:
        from hostgen.reference_model import MODEL_NAME, reference_tflite

        return load_model(reference_tflite(log)), MODEL_NAME
    path = Path(model_arg)
    if not path.is_file():
        raise HostgenError(f"model file {path} not found; give a .tflite or .keras file")
    if path.suffix == ".tflite":
        return load_model(path), path.stem
    if path.suffix == ".keras":
        return load_model(_convert_keras(path, calibration, log)), path.stem
    raise HostgenError(f"model file {path} has suffix '{path.suffix}'; give an int8 .tflite or a Keras .keras model")


def load_calibration(path: Path) -> np.ndarray:
    """Float32 windows from .npy, or the `x` array of an .npz."""
    try:
        loaded = np.load(path, allow_pickle=False)
        data = loaded["x"] if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except (OSError, ValueError, KeyError) as exc:
        raise HostgenError(f"cannot read calibration data {path} ({exc}); give a .npy or an .npz with 'x'") from None
    return np.asarray(data, dtype=np.float32)


def _convert_keras(path: Path, calibration: str | None, log) -> Path:
    from hostgen import dataset, quantize
    from hostgen.reference_model import RECIPE

    keras_bytes = path.read_bytes()
    digest = hashlib.sha256(keras_bytes)
    if calibration:
        digest.update(Path(calibration).read_bytes())
    target = CACHE_DIR / "converted" / f"{digest.hexdigest()}.tflite"
    if target.is_file():
        return target
    model = quantize.load_keras(path)
    if calibration:
        representative = load_calibration(Path(calibration))
    elif tuple(model.inputs[0].shape[1:]) == (dataset.WINDOW, 1):
        counts, _ = dataset.make_windows(RECIPE["train_seed"], quantize.REPRESENTATIVE_WINDOWS)
        representative = dataset.model_input(counts)
    else:
        raise HostgenError(
            f"Keras model {path} takes inputs of shape {tuple(model.inputs[0].shape[1:])}, not the reference "
            "windows; give representative data with --calib FILE.npy"
        )
    log(f"converting {path} to int8 with {len(representative)} representative windows")
    tflite = quantize.quantize(model, representative)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(tflite)
    partial.rename(target)
    return target

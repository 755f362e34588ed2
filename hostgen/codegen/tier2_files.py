"""A build's tier-2 files: the int8 model compiled by the faultline engine for stock MicroPython
(model_<name>.py) and plain C (model_<name>.c/.h), checked against the app's window.

A model whose ops the engine cannot run still gets its TFLM arrays; the build says why tier 2 is
off and the firmware keeps the fallback. A model that does not fit the app's window, or whose
tensors the engine refuses, stops the build.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostgen.errors import HostgenError
from hostgen.model.tflite import ModelInfo


@dataclass(frozen=True)
class Tier2:
    module: str | None  # the firmware module that runs the model, or None: the fallback decides alone
    reason: str  # why there is no module, or what the module is
    kind: str  # classifier, reconstruction, or "" without a module
    files: dict[str, bytes]
    figures: dict


NO_TIER2 = Tier2(None, "this build has no tier-2 model", "", {}, {"engine": "off"})


def compile_tier2(model: ModelInfo, name: str, app: dict, command: str) -> Tier2:
    from hostgen.model.engine.generate import compile_model
    from hostgen.model.engine.lowering import UnsupportedOp, lower

    settings = app["model"]
    kind = None if settings["kind"] == "auto" else settings["kind"]
    try:
        macs = lower(model, name).macs
        compiled = compile_model(model, name, command, settings["input_recipe"], kind, slice_macs(macs, app))
    except UnsupportedOp as exc:
        return Tier2(None, str(exc), "", {}, {"engine": "off", "reason": str(exc)})
    _check_window(model, compiled.recipe, app)
    if compiled.kind not in ("classifier", "reconstruction"):
        raise HostgenError(
            f"model {model.path.name} ends in neither a softmax over classes (class 0 normal) nor a reconstruction of its "
            f"input (output {tuple(compiled.graph.output_tensor.shape)}); the firmware cannot decide from it: add a softmax "
            "output or train an autoencoder"
        )
    module = f"model_{name}"
    figures = {"engine": "on", "module": module, **compiled.figures}
    return Tier2(module, f"model {name} ({compiled.kind})", compiled.kind, compiled.files, figures)


def slice_macs(macs: int, app: dict) -> int:
    """Multiply-accumulates per slice, so that an inference ends within a stride at one slice per block.

    The firmware runs a slice after each block but the one that completes the windows; a margin of
    one more block leaves room for a window's work to fall late without the model falling behind.
    """
    sampling = app["sampling"]
    slices = sampling["stride_samples"] // sampling["block_samples"] - 2
    if slices < 1:
        raise HostgenError(
            f"a stride of {sampling['stride_samples']} samples is {slices + 2} block(s): too short to run a model in slices "
            "between blocks; use a stride of at least 3 blocks"
        )
    per_slice = -(-macs // slices)
    return per_slice


def _check_window(model: ModelInfo, recipe, app: dict) -> None:
    sampling = app["sampling"]
    window, channels = sampling["window_samples"], sampling["channels"]
    if recipe.window != window or recipe.channels not in (1, channels):
        raise HostgenError(
            f"model {model.path.name} takes windows of {recipe.window} samples x {recipe.channels} channel(s), but the app "
            f"config's window is {window} samples x {channels} channel(s); set sampling.window_samples = {recipe.window}"
            f"{f' and sampling.channels = {recipe.channels}' if recipe.channels != channels else ''}, or train the model "
            "for the app's window"
        )

"""A build's tier-2 files: the int8 model compiled by the faultline engine for stock MicroPython
(model_<name>.py) and plain C (model_<name>.c/.h), checked against the app's window.

With `[model] tier2 = "auto"` a model the engine cannot run on this board (an op it lacks, or
more heap than the board has) still gets its TFLM arrays: the build says why tier 2 is off and the
firmware keeps the fallback. With "required" that stops the build, as a model that does not fit
the app's window, or whose tensors the engine refuses, always does. "off" compiles nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hostgen.codegen.families import family_of
from hostgen.constants import FEATURES, HELD_DECISION_SLOTS
from hostgen.dsp.fastpath import decision_delay_windows
from hostgen.dsp.features import PERIOD_WINDOWS
from hostgen.errors import HostgenError
from hostgen.model.tflite import ModelInfo

GC_BLOCK_32 = 16  # bytes per GC block on a 32-bit MicroPython (4 words)
OBJECT_32 = 16  # a bytes or bytearray object's own block on 32 bits: type, length, hash or flags, data pointer
# The firmware with diag and selftest, without a model: 43,008 bytes measured on a 32-bit MicroPython (v1.28
# unix port, armhf, run under qemu-arm; DESIGN.md's facts of 2026-12), plus the code added to the .mpy files
# (armv7emsp, counted with mpy-cross) since: 2,003 bytes for the transmit ring (packets, commands, pipeline, diag,
# selftest, faultline), 2,057 for once_per_turn and held decisions (the generated fallback, pipeline, fastpath) and
# 185 for the periodicity history (the generated fallback, pipeline), and 2,212 for unbalance and lower rules (the
# generated fallback 4,159 -> 6,241, settings 4,252 -> 4,382), plus the fallback's own buffer for unbalance (its 92
# lag depths, an array('i'): 384 bytes), and 273 for an advisory model's tier (pipeline, diag, faultline 13,841 ->
# 14,114).
# The base that the buffers added since (pipeline_buffers_32bit_bytes, transmit_ring_32bit_bytes) and the model's
# 32-bit figure are added to.
FIRMWARE_HEAP_32BIT = 43_008 + 2_003 + 2_057 + 185 + 2_212 + 384 + 273


@dataclass(frozen=True)
class Tier2:
    module: str | None  # the firmware module that runs the model, or None: the fallback decides alone
    reason: str  # why there is no module, or what the module is
    kind: str  # classifier, reconstruction, or "" without a module
    files: dict[str, bytes]
    figures: dict
    decides: bool = False  # the model decides the windows it is sure of; False: it only advises


NO_TIER2 = Tier2(None, "this build has no tier-2 model", "", {}, {"engine": "off"})


def compile_tier2(model: ModelInfo, name: str, board, app: dict, command: str) -> Tier2:
    from hostgen.model.engine.generate import compile_model
    from hostgen.model.engine.lowering import UnsupportedOp, lower

    settings = app["model"]
    if settings["tier2"] == "off":
        return Tier2(None, "the app config sets model.tier2 = \"off\"", "", {}, {"engine": "off", "reason": "model.tier2 = off"})
    required = settings["tier2"] in ("required", "decide")
    kind = None if settings["kind"] == "auto" else settings["kind"]
    try:
        macs = lower(model, name).macs
        compiled = compile_model(model, name, command, settings["input_recipe"], kind, slice_macs(macs, app))
    except UnsupportedOp as exc:
        if required:
            raise HostgenError(f"{exc} (the app config sets model.tier2 = \"required\")") from None
        return Tier2(None, str(exc), "", {}, {"engine": "off", "reason": str(exc)})
    _check_window(model, compiled.recipe, app)
    if compiled.kind not in ("classifier", "reconstruction"):
        raise HostgenError(
            f"model {model.path.name} ends in neither a softmax over classes (class 0 normal) nor a reconstruction of its "
            f"input (output {tuple(compiled.graph.output_tensor.shape)}); the firmware cannot decide from it: add a softmax "
            "output or train an autoencoder"
        )
    module = f"model_{name}"
    figures = {"engine": "on", "module": module, "recipe": compiled.recipe.name, **compiled.figures,
               **_heap_figures(compiled, module, board, app)}
    if compiled.kind == "reconstruction":
        figures |= _limit(compiled, model, board, app)
    if figures["firmware_heap_32bit_bytes"] > figures["board_heap_bytes"]:
        too_big = (
            f"with model {model.path.name} the firmware needs about {figures['firmware_heap_32bit_bytes']:,} bytes of "
            f"MicroPython heap on a 32-bit board ({figures['firmware_own_32bit_bytes']:,} for the firmware + "
            f"{figures['transmit_ring_32bit_bytes']:,} for its transmit ring ([link] resend_bytes) + {figures['model_heap_32bit_bytes']:,} "
            f"for the model: {figures['mpy_bytes']:,} of .mpy, {compiled.plan.activation_bytes:,} of activations), but "
            f"{board.name}'s stock MicroPython has {figures['board_heap_bytes']:,}: use a smaller model or a board with more RAM"
        )
        if required:
            raise HostgenError(too_big)
        return Tier2(None, too_big, "", {}, {**figures, "engine": "off", "reason": too_big})
    advice = _only_advises(model, settings["tier2"])
    figures["decides"] = advice is None
    if advice:
        figures["advises_because"] = advice
    return Tier2(module, f"model {name} ({compiled.kind})" + (f", advisory: {advice}" if advice else ""), compiled.kind,
                 compiled.files, figures, decides=advice is None)


def _only_advises(model: ModelInfo, mode: str) -> str | None:
    """Why the model only advises (the fallback decides every window), or None when it decides the windows it is sure of.

    The reference model is judged by its own report: when it misses its targets and the board with it is no better
    than the fallback alone on the same windows, it advises. A user's model has no such report: it decides.
    """
    from hostgen.model.reference import MODEL_NAME, TARGET_MAX_FALSE_ALARMS, TARGET_MIN_RECALL, reference_figures
    from hostgen.paths import REFERENCE_DIR

    if mode == "advisory":
        return "the app config sets model.tier2 = \"advisory\""
    if mode == "decide" or model.path.resolve() != (REFERENCE_DIR / f"{MODEL_NAME}.tflite").resolve():
        return None
    figures = reference_figures()
    if figures is None or figures["meets_targets"] or figures["baselines"]["board_beats_fallback"]:
        return None
    held = figures["heldout"]["int8_tflm"]
    return (f"the reference model misses its targets (held-out false alarms {held['false_alarm_rate']:.2%} at fault recall "
            f"{held['fault_recall']:.3f}; the target is <= {TARGET_MAX_FALSE_ALARMS:.0%} at >= {TARGET_MIN_RECALL}) and the board "
            "is no better with it than with the fallback alone (build/reference/reference.json); set model.tier2 = \"decide\" "
            "to let it decide")


SYNTHETIC_LIMIT_WINDOWS = 1000


def model_limit_path(board) -> Path:
    from hostgen.dsp.plan import CALIBRATION_DIR

    return CALIBRATION_DIR / f"{board.name}.model.json"


def _limit(compiled, model: ModelInfo, board, app: dict) -> dict:
    """A reconstruction model's fault limit: calibrated on this machine for this model, else from the synthetic population."""
    import json

    import numpy as np

    from hostgen.data import synthetic as dataset
    from hostgen.model.tier2 import reconstruction_errors, reconstruction_limit

    stored = model_limit_path(board)
    if stored.is_file():
        record = json.loads(stored.read_text())
        if record["model_sha256"] == model.sha256:
            return {"limit": record["limit"], "limit_source": f"calibrated ({stored.name})"}
    counts, _ = dataset.make_windows(app["fallback"]["seed"] + 3, SYNTHETIC_LIMIT_WINDOWS * compiled.recipe.channels,
                                     fault_fraction=0.0, window=compiled.recipe.window)
    windows = counts.reshape(SYNTHETIC_LIMIT_WINDOWS, compiled.recipe.channels, -1).transpose(0, 2, 1).reshape(SYNTHETIC_LIMIT_WINDOWS, -1)
    limit = reconstruction_limit(reconstruction_errors(compiled, windows.astype(np.int16)), app)
    return {"limit": limit, "limit_source": f"{SYNTHETIC_LIMIT_WINDOWS} synthetic normal windows"}


def _block_32(payload: int) -> int:
    return OBJECT_32 + -(-payload // GC_BLOCK_32) * GC_BLOCK_32


def pipeline_buffers_32bit_bytes(app: dict) -> int:
    """Buffers the pipeline gained after FIRMWARE_HEAP_32BIT was measured, in both pipelines at selftest's peak.

    Per channel: the raw window's history (once_per_turn reads it; before, only a model's input did), each
    held decision's slots and result array, and the periodicity history; once: the raw window the fallback reads.
    """
    window, channels = app["sampling"]["window_samples"], app["sampling"]["channels"]
    delay = decision_delay_windows(app)
    held = _block_32(4 * HELD_DECISION_SLOTS * delay) + delay * _block_32(4 * (len(FEATURES) + 3)) + _block_32(4 * delay)
    period_history = _block_32(4 * (PERIOD_WINDOWS - 1))
    return 2 * (channels * (_block_32(2 * window) + held + period_history) + _block_32(2 * window))


def transmit_ring_32bit_bytes(app: dict) -> int:
    """The link's transmit ring (`[link] resend_bytes`, a bytearray), allocated at start-up after FIRMWARE_HEAP_32BIT was measured."""
    return _block_32(app["link"]["resend_bytes"])


def _heap_figures(compiled, module: str, board, app: dict) -> dict:
    """The model's MicroPython heap on a 32-bit board, counted, not measured on the 64-bit unix port.

    A board loads the module's .mpy (for its arch) into the heap: its code and its weight constants, each
    constant a bytes object of its own; at import the module allocates its input, output, arena and slice
    cursor; the pipeline holds a window per channel for the model and its scores. Every object and buffer
    is sized for 32 bits: a 16-byte object plus its payload in 16-byte GC blocks.
    """
    from hostgen.board.image import compile_mpy

    source = compiled.files[f"{module}.py"]
    mpy = compile_mpy({f"{module}.py": source}, board["core"]["mpy_cross_arch"])[f"{module}.mpy"]
    constants = len(re.findall(rb"^_[A-Z]+\d+ = ", source, re.M))
    plan = compiled.plan
    runtime = sum(_block_32(n) for n in (plan.input_bytes, plan.output_bytes, max(plan.arena_bytes, 1), 8))
    sampling = app["sampling"]
    windows = sampling["channels"] * _block_32(2 * sampling["window_samples"])  # the window held for the model
    scores = _block_32(4 * max(compiled.classes, 1))
    model_heap = len(mpy) + constants * GC_BLOCK_32 + runtime + windows + scores
    firmware = FIRMWARE_HEAP_32BIT + pipeline_buffers_32bit_bytes(app)
    ring = transmit_ring_32bit_bytes(app)
    return {
        "mpy_arch": board["core"]["mpy_cross_arch"],
        "mpy_bytes": len(mpy),
        "model_heap_32bit_bytes": model_heap,
        "firmware_own_32bit_bytes": firmware,
        "transmit_ring_32bit_bytes": ring,
        "firmware_heap_32bit_bytes": firmware + ring + model_heap,
        "board_heap_bytes": family_of(board).stock_heap_bytes(board),
    }


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

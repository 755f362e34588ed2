"""The reference model: a small Conv1D bearing-fault detector trained on synthetic data.

Its input is the engine's "band_over_level" recipe: the window through a band-pass over its own level,
so that int8 keeps faint bearing impulses that a full-scale input buries under the shaft harmonics,
at any running level. The fault-probability cut is chosen on
validation sets (own and shifted operating points) and folded into the output bias, so the int8
model's top class is the decision; the held-out sets only measure it. Each window is generated
SETTLE_SAMPLES longer than the model's, so that the fallback's FIR settles before it and the
fallback and the board are measured on the very windows the model is (hostgen/model/baselines.py).

Built once into build/reference/ and rebuilt only when its inputs change: the data
generator, the input recipe, this recipe, the quantizer and the TensorFlow version.
"""

from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from hostgen.config.app import load_app
from hostgen.data import synthetic as dataset
from hostgen.model import baselines, quantize
from hostgen.model.engine import recipe as input_recipes
from hostgen.model.tflite import load_model
from hostgen.model.tflm_run import tflm_predict
from hostgen.paths import REFERENCE_DIR
from hostgen.util.atomic import staged_directory, write_atomic
from hostgen.util.cache import code_key

MODEL_NAME = "faultline"
INPUT_RECIPE = "band_over_level"  # the engine's recipe (hostgen/model/engine/recipe.py) the model is trained on
TARGET_MAX_FALSE_ALARMS = 0.01  # of normal held-out windows, at...
TARGET_MIN_RECALL = 0.95  # ...this fault recall: the target, reported as met or missed
CUT_TIE_MARGIN = 1e-3  # logits: the normal window the cut sits on stays normal through float32 rounding
SETTLE_SAMPLES = 64  # generated before each window, for the fallback's FIR (app filter.max_taps is 63)
RECIPE = {
    "train_seed": 1,
    "train_windows": 10000,  # at the machines' own speeds, plus as many at shifted operating points (below)
    "train_shifted_seed": 11,
    "train_shifted_windows": 10000,
    "validation_seed": 4,  # the operating cut is chosen on these (own speeds, and shifted), never on the held-out sets
    "validation_shifted_seed": 12,
    "validation_windows": 1500,
    "validation_max_false_alarms": 0.005,  # half the target: 750 normal windows per validation set are a noisy estimate
    "heldout_seed": 2,
    "heldout_windows": 1500,
    "shifted_seed": 3,  # the operating-point-shifted held-out set: speeds and loads of hostgen.data.floor's held-out recordings
    "shifted_speeds": (0.6, 1.4),
    "shifted_loads": (0.5, 1.2),
    "init_seed": 7,
    "epochs": 40,
    "batch_size": 128,
    "learning_rate": 3e-3,  # cosine-decayed to 0 over the run
    "normal_weight": 4.0,  # a false alarm costs this many missed faults in training: the operating point is at low false alarms
}


def model_input(counts: np.ndarray) -> np.ndarray:
    """The float model's input for generated windows: their last WINDOW samples through the input recipe."""
    return input_recipes.FLOAT_INPUTS[INPUT_RECIPE](counts[:, -dataset.WINDOW :])


def recipe_key() -> str:
    return code_key(json.dumps(RECIPE, sort_keys=True), dataset, input_recipes, quantize, Path(__file__), metadata.version("tensorflow-cpu"))


def _rates(decided: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "false_alarm_rate": round(float(np.mean(decided[labels == 0] != 0)), 4),
        "fault_recall": round(float(np.mean(decided[labels != 0] != 0)), 4),
    }


def reference_figures() -> dict | None:
    """The trained reference model's held-out figures, whether they meet the targets, and the fallback's and the
    board's on the same windows (None before training)."""
    manifest = REFERENCE_DIR / "reference.json"
    if not manifest.is_file():
        return None
    figures = json.loads(manifest.read_text())
    tflite, app = REFERENCE_DIR / f"{MODEL_NAME}.tflite", load_app()  # the default app config: the board the reference is for
    if figures.get("baselines", {}).get("key") != baselines.baselines_key(tflite, INPUT_RECIPE, app):
        held_out = {part: generated_windows(*SETS[part]) for part in HELD_OUT}
        figures["baselines"] = baselines.board_baselines(tflite, MODEL_NAME, INPUT_RECIPE, held_out, app)
        write_atomic(manifest, json.dumps(figures, indent=2) + "\n")
    return figures


def reference_tflite(log=print) -> Path:
    """Path of the reference int8 model, training it first if the cache is stale."""
    manifest = REFERENCE_DIR / "reference.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("key") == recipe_key():
        return REFERENCE_DIR / f"{MODEL_NAME}.tflite"
    log("training the reference model (cached in build/reference/ until its inputs change)")
    _train_into(REFERENCE_DIR, log)
    _log_baselines(reference_figures()["baselines"], log)
    return REFERENCE_DIR / f"{MODEL_NAME}.tflite"


def _log_baselines(figures: dict, log) -> None:
    parts = []
    for part in HELD_OUT:
        fallback, board = figures[part]["fallback"], figures[part]["board"]
        parts.append(f"{part}: fallback alone {fallback['false_alarm_rate']:.3f} at {fallback['fault_recall']:.3f}, board "
                     f"{board['false_alarm_rate']:.3f} at {board['fault_recall']:.3f} (model decides {board['model_decides']:.0%})")
    better = "better" if figures["board_beats_fallback"] else "no better"
    log(f"false alarms at fault recall on the same windows, {'; '.join(parts)}: the board with the model is {better} than the fallback alone")


def build_keras_model(window: int = dataset.WINDOW):
    tf = quantize.import_tensorflow()
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            tf.keras.Input((window, 1)),
            layers.Conv1D(8, 9, strides=2, activation="relu"),
            layers.Conv1D(16, 7, strides=2, activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(16, 5, activation="relu"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(16, activation="relu"),
            layers.Dense(len(dataset.CLASS_NAMES), activation="softmax"),
        ],
        name=MODEL_NAME,
    )


def generated_windows(seed: int, count: int, shifted: bool) -> tuple[np.ndarray, np.ndarray]:
    """(int16 windows of SETTLE_SAMPLES + WINDOW, labels): at the machines' own speeds, or at the shifted operating points."""
    span = SETTLE_SAMPLES + dataset.WINDOW
    if not shifted:
        return dataset.make_windows(seed, count, window=span)
    return dataset.make_windows(seed, count, window=span, speeds=RECIPE["shifted_speeds"], loads=RECIPE["shifted_loads"])


SETS = {  # name: (seed, windows, at the shifted operating points)
    "train": (RECIPE["train_seed"], RECIPE["train_windows"], False),
    "train_shifted": (RECIPE["train_shifted_seed"], RECIPE["train_shifted_windows"], True),
    "validation": (RECIPE["validation_seed"], RECIPE["validation_windows"], False),
    "validation_shifted": (RECIPE["validation_shifted_seed"], RECIPE["validation_windows"], True),
    "heldout": (RECIPE["heldout_seed"], RECIPE["heldout_windows"], False),
    "heldout_shifted": (RECIPE["shifted_seed"], RECIPE["heldout_windows"], True),
}
HELD_OUT = ("heldout", "heldout_shifted")


def operating_cut(fault_probabilities: list[np.ndarray], labels: list[np.ndarray], max_false_alarms: float) -> float:
    """The lowest fault-probability cut at which every set's normal windows raise at most `max_false_alarms`."""
    for cut in np.unique(np.concatenate([p[y == 0] for p, y in zip(fault_probabilities, labels)])):
        if all(np.mean(p[y == 0] > cut) <= max_false_alarms for p, y in zip(fault_probabilities, labels)):
            return float(cut)
    return 1.0


def _fold_cut_into_bias(model, cut: float) -> None:
    """Make argmax decide "fault" where the fault probability exceeds `cut`: softmax p1 > c iff z1 - z0 > logit(c)."""
    kernel, bias = model.layers[-1].get_weights()
    cut = min(max(cut, 1e-6), 1.0 - 1e-6)
    bias[0] += np.log(cut / (1.0 - cut)) + CUT_TIE_MARGIN
    model.layers[-1].set_weights([kernel, bias])


def _train_into(target: Path, log) -> None:
    tf = quantize.import_tensorflow()
    started = time.monotonic()
    tf.keras.utils.set_random_seed(RECIPE["init_seed"])
    tf.config.experimental.enable_op_determinism()
    parts = {name: generated_windows(*SETS[name]) for name in SETS}
    inputs = {name: model_input(counts) for name, (counts, _) in parts.items()}
    labels = {name: y for name, (_, y) in parts.items()}
    x_train = np.concatenate([inputs["train"], inputs["train_shifted"]])
    y_train = np.concatenate([labels["train"], labels["train_shifted"]])

    model = build_keras_model()
    steps = RECIPE["epochs"] * -(-len(x_train) // RECIPE["batch_size"])
    schedule = tf.keras.optimizers.schedules.CosineDecay(RECIPE["learning_rate"], steps)  # settles instead of ending on a noisy step
    model.compile(tf.keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=RECIPE["epochs"], batch_size=RECIPE["batch_size"], verbose=0,
              class_weight={0: RECIPE["normal_weight"], 1: 1.0})
    validation = ("validation", "validation_shifted")
    cut = operating_cut([model.predict(inputs[name], verbose=0)[:, 1] for name in validation],
                        [labels[name] for name in validation], RECIPE["validation_max_false_alarms"])
    _fold_cut_into_bias(model, cut)
    tflite = quantize.quantize(model, x_train)

    with staged_directory(target) as staging:
        model.save(staging / f"{MODEL_NAME}.keras")
        (staging / f"{MODEL_NAME}.tflite").write_bytes(tflite)
        held_counts, held_labels = parts["heldout"]
        np.savez_compressed(staging / "heldout.npz", x=inputs["heldout"], y=held_labels, counts=held_counts[:, -dataset.WINDOW :])
        int8 = load_model(staging / f"{MODEL_NAME}.tflite")
        rates, accuracy = {}, {}
        for name in (*validation, "heldout", "heldout_shifted"):
            float_decided = model.predict(inputs[name], verbose=0).argmax(1)
            int8_decided = tflm_predict(int8, inputs[name]).argmax(1)
            rates[name] = {"float": _rates(float_decided, labels[name]), "int8_tflm": _rates(int8_decided, labels[name])}
            accuracy[name] = (float(np.mean(float_decided == labels[name])), float(np.mean(int8_decided == labels[name])))
        held, shifted = rates["heldout"], rates["heldout_shifted"]
        figures = {
            "key": recipe_key(),
            "recipe": RECIPE,
            "input_recipe": INPUT_RECIPE,
            "operating_cut": round(cut, 6),  # fault probability, chosen on the validation sets, folded into the output bias
            "float_accuracy": round(accuracy["heldout"][0], 4),
            "int8_tflm_accuracy": round(accuracy["heldout"][1], 4),
            "validation": rates["validation"],
            "validation_shifted": rates["validation_shifted"],
            "heldout": held,
            "heldout_shifted": shifted,
            "targets": {"max_false_alarm_rate": TARGET_MAX_FALSE_ALARMS, "min_fault_recall": TARGET_MIN_RECALL},
            "meets_targets": all(
                part["int8_tflm"]["false_alarm_rate"] <= TARGET_MAX_FALSE_ALARMS and part["int8_tflm"]["fault_recall"] >= TARGET_MIN_RECALL
                for part in (held, shifted)
            ),
            "train_seconds": round(time.monotonic() - started, 1),
        }
        (staging / "reference.json").write_text(json.dumps(figures, indent=2) + "\n")
    int8, moved = held["int8_tflm"], shifted["int8_tflm"]
    verdict = "meets" if figures["meets_targets"] else "misses (on a board it decides only the windows it is at least min_confidence sure of; the fallback decides the rest)"
    log(
        f"reference model: held-out accuracy float {figures['float_accuracy']:.3f}, int8 (TFLM) {figures['int8_tflm_accuracy']:.3f}; "
        f"int8 false alarms {int8['false_alarm_rate']:.3f} at fault recall {int8['fault_recall']:.3f} "
        f"({moved['false_alarm_rate']:.3f} at {moved['fault_recall']:.3f} at other speeds and loads), which {verdict} the target "
        f"(<= {TARGET_MAX_FALSE_ALARMS} at >= {TARGET_MIN_RECALL}); operating cut {cut:.3f} chosen on validation; "
        f"{figures['train_seconds']} s"
    )

"""The quantization tax: what int8 costs a model, measured the way the board computes it.

The float model (Keras) and the int8 model run on the same held-out windows, clean and
under the sensor conditions of `hostgen.qcheck.conditions`. The int8 figures that count are the
real TFLM runtime's (`tflm_run`); `tf.lite.Interpreter` with its reference kernels runs
beside it for comparison; `hostgen.qcheck.layer_distance` shows where, layer by layer, int8 loses
most. A gate with configurable limits refuses a model that lost too much, naming the
condition and the figure. Measurements are cached by the hashes of the
models, the data and this code; the limits are applied afresh on every run.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from hostgen.codegen.render import display_path
from hostgen.config.toml import read_toml
from hostgen.data import synthetic as dataset
from hostgen.data.recordings import load_array, load_representative
from hostgen.errors import HostgenError
from hostgen.model import graph as model_graph
from hostgen.model import quantize, tflm_run
from hostgen.model.engine import recipe as input_recipes
from hostgen.model.engine.recipe import FLOAT_INPUTS
from hostgen.model.reference import MODEL_NAME, SETS, generated_windows
from hostgen.model.reference import model_input as reference_model_input
from hostgen.model.tflite import ModelInfo, load_model
from hostgen.model.tflm_run import tflm_predict
from hostgen.paths import CACHE_DIR, REFERENCE_DIR
from hostgen.qcheck import conditions, layer_distance
from hostgen.qcheck.conditions import CONDITIONS, Condition, distorted_inputs
from hostgen.qcheck.layer_distance import BATCH, cosine, layer_distances, tflite_interpreter, tflite_tensors

DEFAULT_LIMITS = Path(__file__).resolve().parent / "limits.toml"
REFERENCE_FLOAT = REFERENCE_DIR / f"{MODEL_NAME}.keras"
REFERENCE_DATA = REFERENCE_DIR / "heldout.npz"
LIMIT_KEYS = ("max_recall_drop", "max_false_alarm_increase", "min_agreement")
COMPETENCE_KEYS = ("min_float_balanced_accuracy",)  # [qcheck.competence]: where the float model is judged
ENVELOPE_KEYS = ("min_recall", "max_false_alarm_rate")  # [qcheck.envelope]: optional limits on the float model itself
SCHEME_TIE = 0.01  # recall differences under a point are a few windows either way: the schemes tie
NO_REPRESENTATIVE = "no representative data for these inputs (give --representative)"


def scheme(per_channel: bool) -> str:
    return "per-channel" if per_channel else "per-tensor"


def tensorflow_version() -> str:
    for distribution in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


# --- limits ---------------------------------------------------------------------------


def load_limits(path: str | None, overrides: dict[str, float | None]) -> dict:
    """The gate's limits: the file's (default: defaults/qcheck.toml), then the flags in `overrides` for every condition."""
    source = Path(path) if path else DEFAULT_LIMITS
    raw = read_toml(source, "limits file")
    table = raw.get("qcheck")
    if set(raw) != {"qcheck"} or not isinstance(table, dict):
        raise HostgenError(f"limits file {source} must hold one [qcheck] table (see {DEFAULT_LIMITS}), found {sorted(raw)}")
    families = sorted({c.family for c in CONDITIONS})
    limits = {"source": display_path(source), "all": {}, "families": {}, "envelope": {}}
    for key, value in table.items():
        if key in ("competence", "envelope") and isinstance(value, dict):
            allowed = COMPETENCE_KEYS if key == "competence" else ENVELOPE_KEYS
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise HostgenError(f"limits file {source}: unknown key 'qcheck.{key}.{unknown[0]}'; use {', '.join(allowed)}")
            limits[key] = {k: _share(f"{source}: qcheck.{key}.{k}", v) for k, v in value.items()}
        elif isinstance(value, dict) and key in families:
            limits["families"][key] = {k: _limit_value(f"{source}: qcheck.{key}.{k}", k, v) for k, v in value.items()}
        elif key in LIMIT_KEYS:
            limits["all"][key] = _limit_value(f"{source}: qcheck.{key}", key, value)
        else:
            raise HostgenError(
                f"limits file {source}: unknown key 'qcheck.{key}'; use {', '.join(LIMIT_KEYS)} "
                f"or a [qcheck.<family>], [qcheck.competence] or [qcheck.envelope] table, family one of {', '.join(families)}"
            )
    missing = [f"qcheck.{k}" for k in LIMIT_KEYS if k not in limits["all"]]
    if missing:
        raise HostgenError(f"limits file {source}: missing key(s) {', '.join(missing)}")
    competence = limits.get("competence", {})
    if set(competence) != set(COMPETENCE_KEYS):
        defaults = read_toml(DEFAULT_LIMITS, "limits file")["qcheck"]["competence"]
        limits["competence"] = {**defaults, **competence}
        limits["competence_source"] = f"{display_path(DEFAULT_LIMITS)} (not set in {display_path(source)})" if source != DEFAULT_LIMITS else display_path(source)
    else:
        limits["competence_source"] = display_path(source)
    for key, value in overrides.items():
        if value is not None:
            limits["all"][key] = _limit_value(f"--{key.replace('_', '-')}", key, value)
            for family_limits in limits["families"].values():
                family_limits.pop(key, None)
    return limits


def _limit_value(where: str, key: str, value) -> float:
    if key not in LIMIT_KEYS:
        raise HostgenError(f"{where}: unknown limit; use {', '.join(LIMIT_KEYS)}")
    return _share(where, value)


def _share(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise HostgenError(f"{where} is {value!r}; give a share between 0 and 1")
    return float(value)


def limit(limits: dict, family: str, key: str) -> float:
    return limits["families"].get(family, {}).get(key, limits["all"][key])


# --- evaluation data ------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    path: Path
    source: str  # the reference held-out set, or --data
    x: np.ndarray  # float32 model inputs
    y: np.ndarray  # labels, 0 = normal
    counts: np.ndarray | None  # the int16 sensor windows x was made from, when known
    available_windows: int
    input_recipe: str | None = None  # the engine's recipe (FLOAT_INPUTS) that made x from the counts, when known


def _recipe_of(counts: np.ndarray, x: np.ndarray) -> str | None:
    """The input recipe whose float input x is of the int16 counts, if one is."""
    if counts.dtype != np.int16 or counts.shape + (1,) != x.shape:
        return None
    return next((name for name, made in FLOAT_INPUTS.items() if np.allclose(made(counts), x, atol=1e-6)), None)


def load_evaluation(data_path: Path | None, int8: ModelInfo, windows: int | None) -> Evaluation:
    """x, y and (when x was made from them) the int16 sensor counts, checked against the int8 model."""
    path = data_path or REFERENCE_DATA
    try:
        loaded = load_array(path)
        arrays = dict(loaded) if isinstance(loaded, np.lib.npyio.NpzFile) else {}
    except (OSError, ValueError) as exc:
        raise HostgenError(f"cannot read evaluation data {path} ({exc}); give an .npz with x and y") from None
    if not {"x", "y"} <= set(arrays):
        raise HostgenError(
            f"evaluation data {path} holds {sorted(arrays) or 'no named arrays'}; give an .npz with x (float32 windows "
            "in the model's input shape) and y (integer labels, 0 = normal)"
        )
    x, y = arrays["x"].astype(np.float32), arrays["y"]
    expected = tuple(int8.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise HostgenError(
            f"evaluation data {path} has windows of shape {tuple(x.shape[1:])} but int8 model {int8.path} takes "
            f"{expected}; give x in the model's input shape"
        )
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise HostgenError(f"evaluation data {path}: y must be {len(x)} integer labels (one per window of x), got {y.dtype} {y.shape}")
    if windows is not None:
        if windows < 1:
            raise HostgenError(f"--windows {windows}: give a positive number of windows")
        x, y = x[:windows], y[:windows]
    if not np.any(y != 0):
        raise HostgenError(f"evaluation data {path} has no fault windows (no label other than 0); fault recall needs windows of a fault class")
    if not np.any(y == 0):
        raise HostgenError(f"evaluation data {path} has no normal windows (label 0); false alarms need normal windows")
    classes = max(int(np.prod(int8.outputs[0].shape[1:])), 2)
    if y.min() < 0 or y.max() >= classes:
        raise HostgenError(f"evaluation data {path} has labels {sorted(set(y.tolist()))} but the model has {classes} classes (0 = normal)")
    counts = arrays["counts"][: len(x)] if "counts" in arrays else None
    recipe = _recipe_of(counts, x) if counts is not None else None
    source = "reference held-out set" if data_path is None else "--data"
    return Evaluation(Path(path), source, x, y, counts if recipe else None, len(arrays["y"]), recipe)


# --- running the models ---------------------------------------------------------------


def decisions(scores: np.ndarray) -> np.ndarray:
    """The class each window is given: argmax, or score >= 0.5 for a single-output model."""
    return scores.argmax(axis=1) if scores.shape[1] > 1 else (scores[:, 0] >= 0.5).astype(np.int64)


def _rates(predicted: np.ndarray, y: np.ndarray) -> dict:
    fault = y != 0
    return {
        "accuracy": round(float(np.mean(predicted == y)), 4),
        "fault_recall": round(float(np.mean(predicted[fault] != 0)), 4),
        "false_alarm_rate": round(float(np.mean(predicted[~fault] != 0)), 4),
    }


def _output_kind(scores: np.ndarray) -> str:
    """What a model's outputs are, to tell a float and int8 pair whose outputs mean different things."""
    tolerance = 0.02
    if scores.min() < -tolerance:
        return "signed scores"
    if scores.shape[1] > 1 and np.mean(np.abs(scores.sum(axis=1) - 1)) < tolerance:
        return "class probabilities"
    return "values in [0, 1]" if scores.max() <= 1 + tolerance else "unbounded scores"


def _check_pair(keras, float_path: Path, int8: ModelInfo) -> None:
    if len(keras.inputs) != 1 or len(keras.outputs) != 1:
        raise HostgenError(f"float model {float_path} has {len(keras.inputs)} inputs and {len(keras.outputs)} outputs; qcheck compares single-input, single-output models")
    for role, float_shape, int8_shape in (
        ("inputs", tuple(keras.inputs[0].shape[1:]), tuple(int8.inputs[0].shape[1:])),
        ("outputs", tuple(keras.outputs[0].shape[1:]), tuple(int8.outputs[0].shape[1:])),
    ):
        if float_shape != int8_shape:
            raise HostgenError(
                f"float model {float_path} has {role} of shape {float_shape} but int8 model {int8.path} has {int8_shape}; "
                "give the int8 model converted from this float model"
            )


def _check_meaning(float_scores: np.ndarray, int8_scores: np.ndarray, float_path: Path, int8: ModelInfo) -> None:
    float_kind, int8_kind = _output_kind(float_scores), _output_kind(int8_scores)
    if float_kind != int8_kind:
        raise HostgenError(
            f"float model {float_path} outputs {float_kind} but int8 model {int8.path} outputs {int8_kind} on the same "
            "clean windows; give the int8 model converted from this float model"
        )


def _measure_condition(condition: Condition, x, y, keras, int8: ModelInfo, interpreter) -> tuple[dict, dict]:
    output = interpreter.get_output_details()[0]["index"]
    scores = {
        "float": np.asarray(keras.predict(x, batch_size=BATCH, verbose=0), np.float32).reshape(len(x), -1),
        "int8_tflm": tflm_predict(int8, x),
        "int8_tflite": tflite_tensors(interpreter, int8, x, [output])[output].reshape(len(x), -1),
    }
    decided = {runtime: decisions(s) for runtime, s in scores.items()}
    error = scores["int8_tflm"] - scores["float"]
    record = {
        "condition": condition.label,
        "family": condition.family,
        **{runtime: _rates(d, y) for runtime, d in decided.items()},
        "agreement": round(float(np.mean(decided["float"] == decided["int8_tflm"])), 4),
        "tflm_tflite_agreement": round(float(np.mean(decided["int8_tflm"] == decided["int8_tflite"])), 4),
        "output_rmse": round(float(np.sqrt(np.mean(error**2))), 5),
        "output_cosine": round(cosine(scores["int8_tflm"], scores["float"]), 5),
        "output_max_abs_lsb": round(float(np.abs(error).max() / int8.outputs[0].scales[0]), 2),
    }
    return record, scores


# --- per-channel vs per-tensor ---------------------------------------------------------


def _reference_training_windows() -> np.ndarray:
    counts, _ = generated_windows(*SETS["train"])
    return reference_model_input(counts)


def _representative(representative_path: Path | None, data_path: Path | None, evaluation: Evaluation, int8: ModelInfo):
    """What the other scheme is quantized with: (a function giving the windows, or None; what they are)."""
    if representative_path:
        return (lambda: load_representative(representative_path)), f"--representative {representative_path}"
    if data_path:
        return (lambda: evaluation.x), f"the evaluation windows of {data_path}"
    if tuple(int8.inputs[0].shape[1:]) == (dataset.WINDOW, 1):
        return _reference_training_windows, "the reference training windows, as the reference model was quantized"
    return None, NO_REPRESENTATIVE


def _scheme_figures(runs: dict, y: np.ndarray, model: ModelInfo | None) -> dict:
    """Per run: fault recall, its drop from float, and agreement with float; the shipped model's as measured (None)."""
    figures = {}
    for label, run in runs.items():
        record = run["record"]
        if model is None:
            rates, agreement = record["int8_tflm"], record["agreement"]
        else:
            predicted = decisions(tflm_predict(model, run["x"]))
            rates, agreement = _rates(predicted, y), round(float(np.mean(predicted == decisions(run["scores"]["float"]))), 4)
        figures[label] = {
            "fault_recall": rates["fault_recall"],
            "recall_drop": round(record["float"]["fault_recall"] - rates["fault_recall"], 4),
            "agreement": agreement,
        }
    return figures


def compare_schemes(keras, int8: ModelInfo, representative, runs: dict, y: np.ndarray) -> dict:
    """The shipped scheme against the other one, built from the float model, on clean data and the worst condition."""
    shipped, other_name = scheme(int8.per_channel), scheme(not int8.per_channel)
    if representative is None:
        return {"shipped": shipped, "verdict": f"{shipped} shipped; {other_name} not built: {NO_REPRESENTATIVE}"}
    data = quantize.quantize(keras, representative(), per_channel=not int8.per_channel)
    path = CACHE_DIR / "qcheck" / f"{hashlib.sha256(data).hexdigest()}.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    other = load_model(path)
    if other.per_channel == int8.per_channel:
        return {"shipped": shipped, "verdict": f"{shipped} shipped; the choice does not apply: no weights are quantized per channel"}
    rows = {
        shipped: {"model_bytes": int8.size_bytes, **_scheme_figures(runs, y, None)},
        other_name: {"model_bytes": other.size_bytes, **_scheme_figures(runs, y, other)},
    }
    drop = {name: max(row[label]["recall_drop"] for label in runs) for name, row in rows.items()}
    figures = f"largest fault-recall drop from float on clean data and the worst condition {drop[shipped]:.3f} vs {drop[other_name]:.3f}"
    size = f"{int8.size_bytes:,} vs {other.size_bytes:,} bytes"
    if drop[shipped] < drop[other_name] - SCHEME_TIE:
        verdict = f"{shipped} chosen (shipped): it keeps fault recall closer to float than {other_name} ({figures}; {size})"
    elif drop[shipped] <= drop[other_name] + SCHEME_TIE:
        verdict = f"{shipped} shipped; {other_name} would keep fault recall as well ({figures}), so the choice rests on size ({size})"
    else:
        verdict = f"{shipped} shipped, but {other_name} keeps fault recall closer to float ({figures}; {size}): consider {other_name}"
    return {"shipped": shipped, "rows": rows, "verdict": verdict}


# --- the gate -------------------------------------------------------------------------


def balanced_accuracy(rates: dict) -> float:
    """The mean of fault recall and normal windows kept normal: 0.5 is chance, whatever the classes' shares."""
    return round((rates["fault_recall"] + 1 - rates["false_alarm_rate"]) / 2, 4)


def competent(record: dict, limits: dict) -> bool:
    """The stated rule: the float model is competent on a condition when its balanced accuracy there is at
    least competence.min_float_balanced_accuracy (a model at chance, however it fails, is not)."""
    return balanced_accuracy(record["float"]) >= limits["competence"]["min_float_balanced_accuracy"]


def apply_gate(records: list[dict], limits: dict) -> dict:
    """Every figure over its limit, the largest excess first.

    Quantization is judged only where the float model is competent (`competent`): where it has
    collapsed, what int8 cost is undefined. Those conditions make the model envelope, reported
    apart, and checked against the optional [qcheck.envelope] limits on the float model itself.
    A float model that is not competent on clean data fails the gate outright.
    """
    failures, envelope = [], []

    def fail(record: dict, excess: float, message: str) -> None:
        failures.append({"condition": record["condition"], "message": f"{record['condition']}: {message}", "excess": round(excess, 4)})

    for r in records:
        float_, int8 = r["float"], r["int8_tflm"]
        if not competent(r, limits):
            envelope.append(r["condition"])
            if r["family"] == "clean":
                fail(r, 1.0, f"the float model itself fails on clean data (balanced accuracy {balanced_accuracy(float_):.3f}: "
                             f"fault recall {float_['fault_recall']:.3f}, false alarms {float_['false_alarm_rate']:.3f}); "
                             "the quantization tax is undefined")
            least, most = limits["envelope"].get("min_recall"), limits["envelope"].get("max_false_alarm_rate")
            if least is not None and float_["fault_recall"] < least:
                fail(r, least - float_["fault_recall"], f"model envelope: the float model's fault recall {float_['fault_recall']:.3f} "
                                                        f"is under the envelope's {least:g} minimum")
            if most is not None and float_["false_alarm_rate"] > most:
                fail(r, float_["false_alarm_rate"] - most, f"model envelope: the float model's false-alarm rate "
                                                          f"{float_['false_alarm_rate']:.3f} is over the envelope's {most:g} limit")
            continue
        drop = round(float_["fault_recall"] - int8["fault_recall"], 4)
        rise = round(int8["false_alarm_rate"] - float_["false_alarm_rate"], 4)
        most_drop = limit(limits, r["family"], "max_recall_drop")
        most_rise = limit(limits, r["family"], "max_false_alarm_increase")
        least_agreement = limit(limits, r["family"], "min_agreement")
        if drop > most_drop:
            fail(r, drop - most_drop, f"int8 (TFLM) fault recall {int8['fault_recall']:.3f} vs float {float_['fault_recall']:.3f}, "
                                      f"a drop of {drop:.3f} over the {most_drop:g} limit")
        if rise > most_rise:
            fail(r, rise - most_rise, f"int8 (TFLM) false-alarm rate {int8['false_alarm_rate']:.3f} vs float "
                                      f"{float_['false_alarm_rate']:.3f}, a rise of {rise:.3f} over the {most_rise:g} limit")
        if r["agreement"] < least_agreement:
            fail(r, least_agreement - r["agreement"], f"float and int8 (TFLM) decide alike on {r['agreement']:.3f} of windows, "
                                                      f"under the {least_agreement:g} minimum")
    failures.sort(key=lambda f: -f["excess"])
    judged = [r["condition"] for r in records if r["condition"] not in envelope]
    return {"passed": not failures, "failures": failures, "limits": limits, "judged": judged, "envelope": envelope}


def require_gate(result: dict) -> None:
    failures = result["gate"]["failures"]
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise HostgenError(
            f"quantization gate failed on {failures[0]['message']}{more}; re-quantize with representative data that spans "
            "the signal, or set the limits with --limits FILE"
        )


# --- the whole check ------------------------------------------------------------------


def _check_files(float_path: Path, representative_path: Path | None) -> None:
    if not float_path.is_file():
        raise HostgenError(f"float model {float_path} not found; give the Keras model the int8 model was converted from")
    if float_path.suffix != ".keras":
        raise HostgenError(f"float model {float_path} is not a Keras model file (.keras); give the float model saved with model.save('name.keras')")
    if representative_path and not representative_path.is_file():
        raise HostgenError(f"representative data {representative_path} not found; give a .npy, or an .npz with x")


def _cache_key(float_path: Path, int8: ModelInfo, evaluation: Evaluation, representative_path: Path | None) -> str:
    digest = hashlib.sha256()
    for module in (conditions, dataset, input_recipes, layer_distance, model_graph, quantize, tflm_run):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    for part in (float_path.read_bytes(), int8.data, evaluation.path.read_bytes(), representative_path.read_bytes() if representative_path else b""):
        digest.update(hashlib.sha256(part).digest())
    digest.update(f"{len(evaluation.y)} {tensorflow_version()} {metadata.version('tflite-micro')}".encode())
    return digest.hexdigest()


def run_qcheck(float_path: Path, int8: ModelInfo, data_path: Path | None, representative_path: Path | None, limits: dict,
               windows: int | None, log) -> dict:
    """Every figure of the check (measured, or from the cache) and the gate's verdict on them."""
    _check_files(float_path, representative_path)
    evaluation = load_evaluation(data_path, int8, windows)
    representative, described = _representative(representative_path, data_path, evaluation, int8)
    cache = CACHE_DIR / "qcheck" / f"{_cache_key(float_path, int8, evaluation, representative_path)}.json"
    if cache.is_file():
        measured = {**json.loads(cache.read_text()), "cached": True}
    else:
        measured = _measure(float_path, int8, evaluation, representative, log)
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial")
        partial.write_text(json.dumps(measured))
        partial.replace(cache)
        measured["cached"] = False
    y = evaluation.y
    return {
        **measured,
        "float_model": {"path": display_path(float_path), "sha256": hashlib.sha256(float_path.read_bytes()).hexdigest()},
        "int8_model": {"path": display_path(int8.path), "sha256": int8.sha256, "scheme": scheme(int8.per_channel)},
        "data": {
            "path": display_path(evaluation.path),
            "source": evaluation.source,
            "windows": len(y),
            "fault_windows": int(np.sum(y != 0)),
            "available_windows": evaluation.available_windows,
            "domain": f"int16 sensor counts, then input recipe {evaluation.input_recipe}" if evaluation.counts is not None else "the float model input x",
        },
        "representative": described,
        "gate": apply_gate(measured["conditions"], limits),
    }


def _measure(float_path: Path, int8: ModelInfo, evaluation: Evaluation, representative, log) -> dict:
    """The figures that take the models to run: cached by the hashes of models, data and this code."""
    started = time.monotonic()
    x, y, counts = evaluation.x, evaluation.y, evaluation.counts
    log(
        f"measuring the quantization tax: {len(CONDITIONS)} conditions x {len(y)} windows, float (Keras) vs int8 "
        "(TFLM, tf.lite); cached in build/.cache/qcheck/"
    )
    keras = quantize.load_keras(float_path)
    tf = quantize.import_tensorflow()
    _check_pair(keras, float_path, int8)
    interpreter = tflite_interpreter(tf, int8)
    records, runs = [], {}
    for condition in CONDITIONS:
        inputs = distorted_inputs(condition, x, counts, FLOAT_INPUTS.get(evaluation.input_recipe, dataset.model_input))
        record, scores = _measure_condition(condition, inputs, y, keras, int8, interpreter)
        if condition.family == "clean":
            _check_meaning(scores["float"], scores["int8_tflm"], float_path, int8)
        records.append(record)
        runs[condition.label] = {"x": inputs, "scores": scores, "record": record}
    worst = min(records[1:], key=lambda r: (r["agreement"], -r["output_rmse"]))["condition"]
    chosen_runs = {label: runs[label] for label in ("clean", worst)}
    return {
        "conditions": records,
        "worst": worst,
        "layers": layer_distances(tf, keras, int8, runs[worst]["x"]),
        "schemes": compare_schemes(keras, int8, representative, chosen_runs, y),
        "tools": {"tensorflow": tensorflow_version(), "tflite-micro": metadata.version("tflite-micro")},
        "seconds": round(time.monotonic() - started, 1),
    }


def summary(result: dict) -> dict:
    """The figures build.json keeps: the verdict and recall per condition."""
    return {
        "gate": "pass" if result["gate"]["passed"] else "fail",
        "worst_condition": result["worst"],
        "windows": result["data"]["windows"],
        "recall": {r["condition"]: {"float": r["float"]["fault_recall"], "int8_tflm": r["int8_tflm"]["fault_recall"]} for r in result["conditions"]},
    }


# --- text -----------------------------------------------------------------------------


def format_qcheck(result: dict) -> str:
    data, gate = result["data"], result["gate"]
    timing = "cached" if result["cached"] else f"{result['seconds']} s"
    lines = [
        f"float  {result['float_model']['path']}",
        f"int8   {result['int8_model']['path']} ({result['int8_model']['scheme']})",
        (f"data   {data['source']} {data['path']}: {data['windows']} of {data['available_windows']} windows per condition "
         f"({data['fault_windows']} fault); conditions applied to {data['domain']} ({timing})"),
        "",
        f"{'':24} {'accuracy':<13} {'fault recall':<20} {'false alarms':<13} {'agree':<6} {'int8 output vs float':<24}",
        (f"{'condition':24} {'float':>6} {'int8':>6} {'float':>6} {'int8':>6} {'tflite':>6} {'float':>6} {'int8':>6} "
         f"{'f/i8':>6} {'RMSE':>7} {'cosine':>7} {'maxLSB':>7}"),
    ]
    for r in result["conditions"]:
        f, i, t = r["float"], r["int8_tflm"], r["int8_tflite"]
        lines.append(
            f"{r['condition']:24} {f['accuracy']:6.3f} {i['accuracy']:6.3f} {f['fault_recall']:6.3f} {i['fault_recall']:6.3f} "
            f"{t['fault_recall']:6.3f} {f['false_alarm_rate']:6.3f} {i['false_alarm_rate']:6.3f} {r['agreement']:6.3f} "
            f"{r['output_rmse']:7.4f} {r['output_cosine']:7.4f} {r['output_max_abs_lsb']:7.1f}"
        )
    lines += ["", f"per layer, float vs int8 under the worst condition ({result['worst']}, lowest float/int8 agreement):"]
    for row in result["layers"]:
        if "note" in row:
            lines.append(f"  {row['layer']:28} not compared: {row['note']}")
        else:
            lines.append(f"  {row['layer']:28} relative RMSE {row['relative_rmse']:8.4f}  cosine {row['cosine']:7.4f}  ({row['tensor']})")
    schemes = result["schemes"]
    lines += ["", "per-channel vs per-tensor" + (f" (the other scheme quantized with {result['representative']}):" if "rows" in schemes else ":")]
    for name, row in schemes.get("rows", {}).items():
        cells = "  ".join(f"{label}: recall {row[label]['fault_recall']:.3f}, agree {row[label]['agreement']:.3f}" for label in ("clean", result["worst"]))
        lines.append(f"  {name:12} {row['model_bytes']:>7,} bytes  {cells}")
    lines.append(f"  {schemes['verdict']}")
    lines.append("")
    limits = gate["limits"]
    rule = limits["competence"]
    lines.append(f"judged where the float model is competent (balanced accuracy >= {rule['min_float_balanced_accuracy']:g}; "
                 f"{limits['competence_source']}): {len(gate['judged'])} of {len(result['conditions'])} conditions")
    if gate["envelope"]:
        envelope_limits = ", ".join(f"{k} {v:g}" for k, v in limits["envelope"].items()) or "no limits set"
        lines.append(f"model envelope: the float model itself fails on {len(gate['envelope'])} condition(s) ({envelope_limits}):")
        by_label = {r["condition"]: r for r in result["conditions"]}
        for label in gate["envelope"]:
            f = by_label[label]["float"]
            lines.append(f"  {label:24} float balanced accuracy {balanced_accuracy(f):.3f}, fault recall {f['fault_recall']:.3f}, "
                         f"false alarms {f['false_alarm_rate']:.3f}")
    described = ", ".join(f"{k} {v:g}" for k, v in limits["all"].items())
    if gate["passed"]:
        lines.append(f"gate   PASS ({described}; {limits['source']})")
    else:
        lines.append(f"gate   FAIL, {len(gate['failures'])} failure(s) ({described}; {limits['source']}):")
        lines += [f"  {f['message']}" for f in gate["failures"]]
    return "\n".join(lines)

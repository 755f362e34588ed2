"""The quantization check: sensor conditions, the reference model's figures, a damaged model failing the gate, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_user_error, run_hostgen
from test_codegen import tree_digest

from hostgen.data import synthetic as dataset
from hostgen.model.reference import INPUT_RECIPE, RECIPE, generated_windows, model_input
from hostgen.qcheck.conditions import CONDITIONS, COUNTS_FULL_SCALE, DISTORTIONS, Condition, distorted_inputs

pytestmark = pytest.mark.slow  # trains or converts models with TensorFlow

LABELS = [c.label for c in CONDITIONS]


def condition(label: str) -> Condition:
    return next(c for c in CONDITIONS if c.label == label)


@pytest.fixture(scope="module")
def heldout(reference_tflite) -> dict[str, np.ndarray]:
    with np.load(reference_tflite.parent / "heldout.npz") as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="module")
def centred(heldout) -> dict[str, np.ndarray]:
    """The held-out counts as the centred_full_scale recipe makes them: the conditions' own domain checks."""
    return {"x": dataset.model_input(heldout["counts"]), "counts": heldout["counts"]}


@pytest.fixture(scope="module")
def float_model(reference_tflite) -> Path:
    return reference_tflite.with_suffix(".keras")


@pytest.fixture(scope="module")
def converted(tmp_path_factory, float_model) -> dict[str, Path]:
    """int8 models made here with real TensorFlow: a damaged reference and one whose output means something else."""
    from hostgen.model import quantize

    tf = quantize.import_tensorflow()
    root = tmp_path_factory.mktemp("qcheck_models")
    counts, _ = generated_windows(RECIPE["train_seed"], quantize.REPRESENTATIVE_WINDOWS, False)
    representative = model_input(counts)
    # Calibrated on windows at 2% of the signal's range: real inputs saturate the int8 input.
    damaged = quantize.quantize(quantize.load_keras(float_model), representative * 0.02)
    tf.keras.utils.set_random_seed(0)
    logits = tf.keras.Sequential(
        [tf.keras.Input((dataset.WINDOW, 1)), tf.keras.layers.GlobalAveragePooling1D(), tf.keras.layers.Dense(2)]
    )
    models = {"damaged": damaged, "logits": quantize.quantize(logits, representative)}
    for name, data in models.items():
        (root / f"{name}.tflite").write_bytes(data)
    return {name: root / f"{name}.tflite" for name in models}


# --- conditions, in the sensor's counts and in the float domain ---------------------------


def test_clean_condition_is_the_data_itself(heldout, centred):
    assert np.array_equal(distorted_inputs(condition("clean"), heldout["x"], heldout["counts"], model_input), heldout["x"])
    assert np.array_equal(distorted_inputs(condition("clean"), centred["x"], centred["counts"]), centred["x"])
    assert np.array_equal(distorted_inputs(condition("clean"), heldout["x"], None), heldout["x"])


def test_conditions_are_reproducible_and_keep_the_window(centred):
    x, counts = centred["x"][:64], centred["counts"][:64]
    for c in CONDITIONS:
        first = distorted_inputs(c, x, counts)
        assert first.shape == x.shape and first.dtype == np.float32, c.label
        assert np.array_equal(first, distorted_inputs(c, x, counts)), c.label


@pytest.mark.parametrize("snr_db", [30, 20, 10])
def test_noise_is_at_its_snr_per_window(centred, snr_db):
    x = centred["x"][:200]
    noisy = distorted_inputs(condition(f"noise {snr_db} dB SNR"), x, centred["counts"][:200])
    measured = 10 * np.log10(x.var(axis=1) / (noisy - x).var(axis=1))
    assert abs(np.median(measured) - snr_db) < 0.5


def test_coarser_adc_drops_low_bits_of_the_count():
    counts = np.arange(-32768, 32768, 7, dtype=np.float64).reshape(1, -1, 1)
    for bits in (12, 10):
        readings = DISTORTIONS["adc"](counts, bits, COUNTS_FULL_SCALE, None)
        step = 2**(16 - bits)
        assert np.array_equal(readings, (counts.astype(np.int64) >> (16 - bits) << (16 - bits)).astype(np.float64))
        assert len(np.unique(readings)) <= 2**bits and np.all(readings % step == 0)


@pytest.mark.parametrize("drift", [-0.03, 0.01, 0.03])
def test_clock_drift_moves_a_tone_by_its_ratio(drift):
    rate, length, tone = dataset.RATE_HZ, 2048, 100.0
    t = np.arange(length) / rate
    counts = np.round(8000 * np.sin(2 * np.pi * tone * t)).astype(np.int16)[np.newaxis]
    drifted = distorted_inputs(condition(f"clock {drift:+.0%}"), dataset.model_input(counts), counts)[0, :, 0]
    spectrum = np.abs(np.fft.rfft(drifted * np.hanning(length), 16 * length))
    peak_hz = np.argmax(spectrum) * rate / (16 * length)
    assert abs(peak_hz - tone / (1 + drift)) < 0.2


def test_clipping_saturates_at_a_share_of_the_data_peak(centred):
    x = centred["x"][:300]
    for share in (0.5, 0.25):
        clipped = distorted_inputs(condition(f"clip at {share:.0%} of peak"), x, None)
        assert np.isclose(np.abs(clipped).max(), share * np.abs(x).max())


def test_linear_conditions_agree_in_both_domains_but_for_the_window_mean(centred):
    x, counts = centred["x"][:100], centred["counts"][:100]
    for label in ("gain x1.25", "noise 20 dB SNR", "clock +2%", "missing 4 samples", "repeated 4 samples"):
        from_counts = distorted_inputs(condition(label), x, counts)
        from_x = distorted_inputs(condition(label), x, None)
        assert np.abs(from_counts - (from_x - from_x.mean(axis=1, keepdims=True))).max() < 2 / COUNTS_FULL_SCALE, label


def _is_subsequence(short, long) -> bool:
    remaining = iter(long)
    return all(any(value == other for other in remaining) for value in short)


@pytest.mark.parametrize("count", [1, 4, 16])
def test_missing_samples_close_up_and_repeated_ones_delay_the_stream(count):
    ramp = np.arange(256.0)[np.newaxis, :, np.newaxis]
    missing = DISTORTIONS["missing"](ramp, count, COUNTS_FULL_SCALE, np.random.default_rng(0))[0, :, 0]
    continued = np.pad(ramp[0, :, 0], (0, count), mode="reflect")
    assert len(missing) == 256 and _is_subsequence(missing, continued) and not np.array_equal(missing, ramp[0, :, 0])
    repeated = DISTORTIONS["repeated"](ramp, count, COUNTS_FULL_SCALE, np.random.default_rng(0))[0, :, 0]
    delivered = repeated[np.r_[True, np.diff(repeated) != 0]]
    assert len(repeated) == 256 and np.array_equal(delivered, ramp[0, : len(delivered), 0])
    assert 0 < 256 - len(delivered) <= count


# --- the reference model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_check(reference_tflite) -> dict:
    result = run_hostgen("qcheck", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reference_passes_with_every_condition_measured(reference_check, reference_tflite):
    assert reference_check["gate"]["passed"]
    assert [r["condition"] for r in reference_check["conditions"]] == LABELS
    assert reference_check["data"]["windows"] == RECIPE["heldout_windows"]
    assert reference_check["data"]["domain"] == f"int16 sensor counts, then input recipe {INPUT_RECIPE}"
    trained = json.loads((reference_tflite.parent / "reference.json").read_text())
    clean = reference_check["conditions"][0]
    assert clean["float"]["accuracy"] == pytest.approx(trained["float_accuracy"], abs=1e-4)
    assert clean["int8_tflm"]["accuracy"] == pytest.approx(trained["int8_tflm_accuracy"], abs=1e-4)
    for record in reference_check["conditions"]:
        for runtime in ("float", "int8_tflm", "int8_tflite"):
            assert set(record[runtime]) == {"accuracy", "fault_recall", "false_alarm_rate"}
        assert record["tflm_tflite_agreement"] >= 0.98
        assert 0.9 < record["output_cosine"] <= 1.0 and record["output_max_abs_lsb"] >= 0


def test_reference_layers_are_all_matched_and_schemes_compared(reference_check):
    layers = reference_check["layers"]
    assert [row["layer"] for row in layers][:2] == ["conv1d", "conv1d_1"] and len(layers) == 7
    assert all("note" not in row and 0 <= row["relative_rmse"] < 0.2 and row["cosine"] > 0.99 for row in layers)
    schemes = reference_check["schemes"]
    assert schemes["shipped"] == "per-channel" and set(schemes["rows"]) == {"per-channel", "per-tensor"}
    assert "per-channel" in schemes["verdict"] and reference_check["worst"] in schemes["rows"]["per-tensor"]


def test_text_report_lists_every_condition_and_the_verdict(reference_tflite):
    result = run_hostgen("qcheck")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for label in LABELS:
        assert any(line.startswith(label + " ") for line in lines), label
    assert "gate   PASS" in result.stdout and "per-channel vs per-tensor" in result.stdout


# --- the gate ------------------------------------------------------------------------------


def test_damaged_model_fails_the_gate_naming_the_condition(float_model, converted):
    result = run_hostgen("qcheck", "--model", float_model, "--tflite", converted["damaged"])
    message = assert_user_error(result, "quantization gate failed on", "over the 0.05 limit")
    assert any(f"failed on {label}: " in message for label in LABELS), message
    assert "gate   FAIL" in result.stdout


def test_gate_judges_only_where_the_float_model_is_competent(reference_check):
    """Where the float model collapses (e.g. heavy noise) the gate does not blame int8; the envelope says so."""
    from hostgen.qcheck.tax import balanced_accuracy, competent

    gate = reference_check["gate"]
    by_label = {r["condition"]: r for r in reference_check["conditions"]}
    floor = gate["limits"]["competence"]["min_float_balanced_accuracy"]
    assert gate["passed"] and gate["envelope"], "the reference float model has conditions it fails (its envelope)"
    assert set(gate["judged"]) | set(gate["envelope"]) == set(LABELS) and "clean" in gate["judged"]
    assert "noise 10 dB SNR" in gate["envelope"], "the float model flags most normal windows there"
    for label in gate["envelope"]:
        assert balanced_accuracy(by_label[label]["float"]) < floor
    assert all(competent(by_label[label], gate["limits"]) for label in gate["judged"])


def test_damaged_twin_still_fails_on_conditions_where_its_float_model_is_competent(reference_check, float_model, converted):
    result = run_hostgen("qcheck", "--model", float_model, "--tflite", converted["damaged"], "--json")
    report = json.loads(result.stdout)
    gate = report["gate"]
    assert not gate["passed"] and gate["envelope"] == reference_check["gate"]["envelope"], "same float model, same envelope"
    assert gate["failures"] and not {f["condition"] for f in gate["failures"]} & set(gate["envelope"])


def test_envelope_limits_fail_a_float_model_that_fails_too_much(float_model, reference_tflite, tmp_path):
    limits = tmp_path / "limits.toml"
    limits.write_text("[qcheck]\nmax_recall_drop = 0.05\nmax_false_alarm_increase = 0.05\nmin_agreement = 0.9\n"
                      "[qcheck.envelope]\nmin_recall = 0.5\n")
    message = assert_user_error(run_hostgen("qcheck", "--limits", limits), "quantization gate failed on", "model envelope")
    assert "the float model's fault recall" in message and "under the envelope's 0.5 minimum" in message
    limits.write_text("[qcheck]\nmax_recall_drop = 0.05\nmax_false_alarm_increase = 0.05\nmin_agreement = 0.9\n"
                      "[qcheck.competence]\nmin_float_recall = 0.8\n")
    assert_user_error(run_hostgen("qcheck", "--limits", limits), "unknown key 'qcheck.competence.min_float_recall'")


def test_limits_from_flags_and_files(float_model, converted, tmp_path):
    pair = ("qcheck", "--model", float_model, "--tflite", converted["damaged"])
    relaxed = run_hostgen(*pair, "--max-recall-drop", "1", "--max-false-alarm-increase", "1", "--min-agreement", "0")
    assert relaxed.returncode == 0, relaxed.stderr
    limits = tmp_path / "limits.toml"
    limits.write_text("[qcheck]\nmax_recall_drop = 1\nmax_false_alarm_increase = 1\nmin_agreement = 0\n"
                      "[qcheck.noise]\nmax_false_alarm_increase = 0.05\n")
    assert_user_error(run_hostgen(*pair, "--limits", limits), "quantization gate failed on noise ")
    limits.write_text("[qcheck]\nmax_recall_drop = 0.05\nmax_false_alarm_increase = 0.05\nmin_recall = 0.9\n")
    assert_user_error(run_hostgen(*pair, "--limits", limits), "unknown key 'qcheck.min_recall'")
    assert_user_error(run_hostgen(*pair, "--min-agreement", "1.5"), "--min-agreement")


def test_gate_failure_stops_gen_and_keeps_the_previous_build(reference_tflite, float_model, converted, tmp_path):
    out = tmp_path / "build" / "stm32f4"
    assert run_hostgen("gen", "--board", "stm32f4", "--model", reference_tflite, "--out", out).returncode == 0
    before = tree_digest(out)
    result = run_hostgen("gen", "--board", "stm32f4", "--model", converted["damaged"], "--float-model", float_model, "--out", out)
    assert_user_error(result, "quantization gate failed on")
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name != ".stm32f4.lock") == ["stm32f4"], "staging left behind"


def test_gen_with_a_float_model_records_the_check(reference_tflite, float_model, tmp_path):
    out = tmp_path / "out"
    result = run_hostgen("gen", "--board", "esp32", "--model", reference_tflite, "--float-model", float_model, "--out", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["qcheck"]["gate"] == "pass" and list(manifest["qcheck"]["recall"]) == LABELS
    assert {"float_model", "qcheck_data", "qcheck_limits"} <= set(manifest["inputs"])
    assert "--float-model" in manifest["command"]


def test_data_without_counts_is_distorted_in_the_float_domain(reference_tflite, float_model, heldout, tmp_path):
    data = tmp_path / "eval.npz"
    np.savez(data, x=heldout["x"][:200], y=heldout["y"][:200])
    result = run_hostgen("qcheck", "--model", float_model, "--tflite", reference_tflite, "--data", data, "--json")
    report = json.loads(result.stdout)
    assert report["data"]["domain"] == "the float model input x" and report["data"]["windows"] == 200
    assert report["representative"] == f"the evaluation windows of {data}"
    assert result.returncode == (0 if report["gate"]["passed"] else 2)


# --- bad input -----------------------------------------------------------------------------


def _bad_input(case: str, tmp_path: Path, heldout, float_model: Path, reference: Path, zoo, converted) -> tuple[list, str]:
    """Arguments for one kind of bad input, and a fragment its error must name."""
    def data(**arrays) -> Path:
        np.savez(tmp_path / "data.npz", **arrays)
        return tmp_path / "data.npz"

    x, y = heldout["x"][:100], heldout["y"][:100]
    if case == "only the float model":
        return ["--model", float_model], "give both --model"
    if case == "int8 model as the float model":
        return ["--model", reference, "--tflite", reference], "not a Keras model file (.keras)"
    if case == "text file as the float model":
        (tmp_path / "notes.keras").write_text("not a model\n")
        return ["--model", tmp_path / "notes.keras", "--tflite", reference], "is not a Keras model"
    if case == "no fault class":
        return ["--data", data(x=x, y=np.zeros(100, np.int64))], "has no fault windows"
    if case == "no labels":
        return ["--data", data(x=x)], "give an .npz with x"
    if case == "float labels":
        return ["--data", data(x=x, y=y * 1.0)], "integer labels"
    if case == "windows of another shape":
        return ["--data", data(x=x[:, :128], y=y)], "has windows of shape (128, 1)"
    if case == "inputs of another shape":
        eval_data = data(x=np.zeros((20, 64), np.float32), y=np.arange(20) % 2)
        return ["--model", float_model, "--tflite", zoo["dense_per_channel"], "--data", eval_data], "has inputs of shape (256, 1) but int8 model"
    assert case == "outputs of another meaning"
    return ["--model", float_model, "--tflite", converted["logits"]], "outputs class probabilities but int8 model"


BAD_INPUT = ["only the float model", "int8 model as the float model", "text file as the float model", "no fault class", "no labels",
             "float labels", "windows of another shape", "inputs of another shape", "outputs of another meaning"]


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_clear_error(case, tmp_path, heldout, float_model, reference_tflite, zoo, converted):
    args, fragment = _bad_input(case, tmp_path, heldout, float_model, reference_tflite, zoo, converted)
    assert_user_error(run_hostgen("qcheck", *args), fragment)

"""The synthetic vibration data and the reference model trained on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import REPO, run_hostgen
from scipy import signal

from hostgen.config.app import load_app
from hostgen.data import synthetic as dataset

pytestmark = pytest.mark.slow  # trains or converts models with TensorFlow


def test_windows_are_reproducible_int16():
    a, labels_a = dataset.make_windows(5, 64)
    b, labels_b = dataset.make_windows(5, 64)
    c, _ = dataset.make_windows(6, 64)
    assert a.dtype == np.int16 and a.shape == (64, dataset.WINDOW)
    assert np.array_equal(a, b) and np.array_equal(labels_a, labels_b)
    assert not np.array_equal(a, c)
    assert 0.3 < labels_a.mean() < 0.7


def test_fault_adds_resonance_band_energy_and_impulsiveness():
    rng = np.random.default_rng(3)
    healthy = dataset.random_machine(rng, fault=False)
    faulty = dataset.Machine(**{**healthy.__dict__, "fault_counts": 1500.0})
    x_normal = dataset.synthesize(healthy, 4000, np.random.default_rng(1)).astype(float)
    x_fault = dataset.synthesize(faulty, 4000, np.random.default_rng(1)).astype(float)
    freqs, p_normal = signal.welch(x_normal, fs=dataset.RATE_HZ, nperseg=256)
    _, p_fault = signal.welch(x_fault, fs=dataset.RATE_HZ, nperseg=256)
    band = np.abs(freqs - healthy.resonance_hz) < 40
    assert p_fault[band].sum() > 3 * p_normal[band].sum()
    high_normal = np.diff(x_normal)
    high_fault = np.diff(x_fault)
    def kurtosis(v):
        return np.mean((v - v.mean()) ** 4) / np.var(v) ** 2
    assert kurtosis(high_fault) > kurtosis(high_normal)


def test_sensor_drift_moves_offset_and_gain():
    rng = np.random.default_rng(4)
    machine = dataset.Machine(**{**dataset.random_machine(rng, False).__dict__, "offset_drift_per_s": 200.0})
    x = dataset.synthesize(machine, 10_000, rng).astype(float)
    assert x[-1000:].mean() - x[:1000].mean() > 1000


def test_reference_model_is_cached_and_accurate(reference_tflite):
    figures = json.loads((reference_tflite.parent / "reference.json").read_text())
    assert figures["float_accuracy"] > 0.85
    assert abs(figures["int8_tflm_accuracy"] - figures["float_accuracy"]) < 0.03
    again = run_hostgen("train")
    assert again.returncode == 0 and "training" not in again.stderr
    assert (REPO / "build" / "reference" / "heldout.npz").is_file()


def test_operating_cut_is_the_lowest_that_holds_on_every_set():
    from hostgen.model.reference import operating_cut

    normal = np.linspace(0.0, 0.99, 100)  # 1% of these windows lie above 0.98, 2% above 0.97
    shifted = np.concatenate([np.linspace(0.0, 0.5, 97), [0.975, 0.985, 0.995]])
    labels = np.zeros(100, int)
    assert operating_cut([normal], [labels], 0.01) == pytest.approx(0.98)
    assert operating_cut([normal, shifted], [labels, labels], 0.01) == pytest.approx(0.985)
    assert operating_cut([normal], [labels], 0.0) == pytest.approx(0.99)


def test_reference_figures_are_the_shipped_int8_model_s_at_a_cut_chosen_on_validation(reference_tflite):
    from hostgen.model.reference import RECIPE, TARGET_MAX_FALSE_ALARMS, TARGET_MIN_RECALL
    from hostgen.model.tflite import load_model
    from hostgen.model.tflm_run import tflm_predict

    figures = json.loads((reference_tflite.parent / "reference.json").read_text())
    with np.load(reference_tflite.parent / "heldout.npz") as held:
        decided = tflm_predict(load_model(reference_tflite), held["x"]).argmax(1)
        y = held["y"]
    assert figures["heldout"]["int8_tflm"] == {"false_alarm_rate": round(float(np.mean(decided[y == 0] != 0)), 4),
                                               "fault_recall": round(float(np.mean(decided[y != 0] != 0)), 4)}
    for part in ("validation", "validation_shifted"):
        assert figures[part]["float"]["false_alarm_rate"] <= RECIPE["validation_max_false_alarms"]
    assert figures["meets_targets"] == all(
        figures[part]["int8_tflm"]["false_alarm_rate"] <= TARGET_MAX_FALSE_ALARMS and figures[part]["int8_tflm"]["fault_recall"] >= TARGET_MIN_RECALL
        for part in ("heldout", "heldout_shifted"))
    seeds = [RECIPE[k] for k in ("train_seed", "train_shifted_seed", "validation_seed", "validation_shifted_seed", "heldout_seed", "shifted_seed")]
    assert len(set(seeds)) == len(seeds), "training, validation and held-out windows come from distinct machines"


def test_reference_figures_carry_the_fallback_and_the_board_on_the_same_windows(reference_tflite):
    from hostgen.model.baselines import baselines_key
    from hostgen.model.reference import HELD_OUT, INPUT_RECIPE, reference_figures

    figures = reference_figures()
    stored = json.loads((reference_tflite.parent / "reference.json").read_text())["baselines"]
    assert figures["baselines"] == stored and stored["key"] == baselines_key(reference_tflite, INPUT_RECIPE, load_app())
    for part in HELD_OUT:
        board, fallback = stored[part]["board"], stored[part]["fallback"]
        assert 0.5 < board["model_decides"] <= 1.0 and 0.0 < fallback["fault_recall"] < 1.0
    assert stored["board_beats_fallback"] == all(
        stored[part]["board"]["false_alarm_rate"] <= stored[part]["fallback"]["false_alarm_rate"]
        and stored[part]["board"]["fault_recall"] > stored[part]["fallback"]["fault_recall"] for part in HELD_OUT)


def test_the_board_is_the_model_when_always_sure_and_the_fallback_when_never(reference_tflite):
    from hostgen.model.baselines import board_baselines, fallback_decisions, flag_rates
    from hostgen.model.engine.generate import compile_model
    from hostgen.model.reference import INPUT_RECIPE, MODEL_NAME, SETS, generated_windows
    from hostgen.model.tflite import load_model
    from hostgen.model.tier2 import model_scores

    counts, labels = (part[:300] for part in generated_windows(*SETS["heldout_shifted"]))
    sets = {"some": (counts, labels)}
    app = load_app()
    compiled = compile_model(load_model(reference_tflite), MODEL_NAME, "pytest", INPUT_RECIPE)
    model_alone = flag_rates(model_scores(compiled, counts[:, -compiled.recipe.window :])[1], labels)
    app["firmware"]["min_confidence"] = 0.0
    always = board_baselines(reference_tflite, MODEL_NAME, INPUT_RECIPE, sets, app)["some"]
    assert always["board"] == {**model_alone, "model_decides": 1.0}
    app["firmware"]["min_confidence"] = 1.01
    never = board_baselines(reference_tflite, MODEL_NAME, INPUT_RECIPE, sets, app)["some"]
    assert never["board"] == {**never["fallback"], "model_decides": 0.0}
    assert never["fallback"] == flag_rates(fallback_decisions({"some": counts}, app)["some"], labels) == always["fallback"]


def test_fallback_windows_too_short_for_the_filter_are_refused():
    from hostgen.dsp.fir import design_fir
    from hostgen.errors import HostgenError
    from hostgen.model.baselines import fallback_decisions

    counts, _ = dataset.make_windows(5, 4, window=dataset.WINDOW + 10)
    needed = dataset.WINDOW + design_fir(load_app()).taps
    with pytest.raises(HostgenError, match=f"windows of {dataset.WINDOW + 10} samples .* at least {needed} long"):
        fallback_decisions({"short": counts}, load_app())


def test_the_ceiling_s_oracle_sees_the_reference_s_own_windows_and_their_faults():
    from hostgen.model import ceiling
    from hostgen.model.reference import SETS, generated_windows

    seed, _, shifted = SETS["heldout_shifted"]
    parts = ceiling.windows_with_parts(seed, 120, shifted)
    counts, labels = generated_windows(seed, 120, shifted)
    assert np.array_equal(parts["counts"], counts) and np.array_equal(parts["labels"], labels)
    ratio, statistic = parts["ratio"], parts["statistic"]
    assert np.all(np.isnan(ratio[labels == 0])) and np.all(ratio[labels == 1] > 0)
    assert np.median(statistic[labels == 0]) < 1.2 < np.median(statistic[labels == 1])  # white noise alone: about 1


@pytest.mark.parametrize("mode", ["auto", "required", "decide", "advisory"])
def test_the_reference_decides_only_when_its_report_earns_it(reference_tflite, mode):
    """A reference that misses its targets, and leaves the board no better than the fallback, only advises (issue 12)."""
    from hostgen.codegen.tier2_files import compile_tier2
    from hostgen.config.app import load_app
    from hostgen.config.board import load_board
    from hostgen.model.reference import reference_figures
    from hostgen.model.tflite import load_model

    app = load_app()
    app["model"]["tier2"] = mode
    tier2 = compile_tier2(load_model(reference_tflite), "faultline", load_board("stm32f4"), app, "test")
    figures = reference_figures()
    earned = figures["meets_targets"] or figures["baselines"]["board_beats_fallback"]
    assert tier2.module is not None
    assert tier2.decides == (mode == "decide" or (mode != "advisory" and earned)), tier2.reason
    assert tier2.figures["decides"] == tier2.decides and ("advisory" in tier2.reason) != tier2.decides
    if mode in ("auto", "required") and not earned:
        assert "misses its targets" in tier2.figures["advises_because"] and 'model.tier2 = "decide"' in tier2.reason

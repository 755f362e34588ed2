"""A reconstruction model (an autoencoder trained on normal running only, as most plants can) as tier 2:
its fault limit comes from normal windows, the board flags a fault by its reconstruction error exactly
as the host engine computes it, and `hostgen calibrate` re-derives the limit from the machine's own running."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from device_support import board_config, machine_run, scenario_machine
from helpers import app_with
from test_pipeline import reference

from hostgen.board.image import build_firmware
from hostgen.board.replay import replay
from hostgen.codegen.build import BuildRequest, generate
from hostgen.constants import NORMAL
from hostgen.data import synthetic as dataset
from hostgen.model.engine.generate import compile_model
from hostgen.model.tflite import load_model
from hostgen.model.tier2 import judge, model_windows, reconstruction_errors, reconstruction_limit

pytestmark = pytest.mark.slow  # trains a model with TensorFlow
RECIPE = "centred_full_scale"  # the autoencoder's input: it learns dataset.model_input, and its build's app config says so


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    from hostgen.model import quantize

    tf = quantize.import_tensorflow()
    tf.keras.utils.set_random_seed(5)
    counts, _ = dataset.make_windows(40, 1500, fault_fraction=0.0)
    x = dataset.model_input(counts)[..., 0] * 16
    model = tf.keras.Sequential([tf.keras.Input((256,)), tf.keras.layers.Dense(16, activation="relu"), tf.keras.layers.Dense(256)])
    model.compile("adam", "mse")
    model.fit(x, x, epochs=8, batch_size=64, verbose=0)
    scaled = tf.keras.Sequential([tf.keras.Input((256,)), tf.keras.layers.Rescaling(16.0), model, tf.keras.layers.Rescaling(1 / 16)])
    path = tmp_path_factory.mktemp("autoencoder") / "autoencoder.tflite"
    path.write_bytes(quantize.quantize(scaled, dataset.model_input(counts)[..., 0]))
    return path


@pytest.fixture(scope="module")
def build(autoencoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("ae_build")
    app = app_with(root, input_recipe=f'"{RECIPE}"')
    out = root / "stm32f4"
    generate(BuildRequest(board="stm32f4", model=str(autoencoder), app=str(app), out=str(out)), lambda _: None)
    return out


def test_the_build_is_a_reconstruction_model_with_a_limit_from_normal_windows(build):
    tier2 = json.loads((build / "build.json").read_text())["tier2"]
    assert tier2["engine"] == "on" and tier2["kind"] == "reconstruction" and tier2["decides"], "a user's model has no report to miss"
    assert tier2["limit"] >= 1 and "synthetic normal windows" in tier2["limit_source"]
    assert f"MODEL_LIMIT = const({tier2['limit']})" in (build / "faultline_config.py").read_text()


@pytest.fixture(scope="module")
def machine_limit(autoencoder, plan):
    """The limit calibrated on the scenario machine's own normal running, as `hostgen calibrate` derives it."""
    machine, rng = scenario_machine(31)
    normal = machine_run(machine, 60, rng).astype(np.int16).reshape(-1, 1)
    compiled = compile_model(load_model(autoencoder), "autoencoder", "test", RECIPE)
    return reconstruction_limit(reconstruction_errors(compiled, model_windows(normal, compiled, 128)), plan.app)


@pytest.mark.parametrize("name", ["normal", "impact"])
def test_the_board_judges_by_reconstruction_error_as_the_host(board, scenarios, plan, autoencoder, build, machine_limit, name):
    """With the limit calibrated on this machine (set in config.json, as diag.set_threshold('model.limit') saves it)."""
    recording, _ = scenarios[name]
    limit = machine_limit
    config = json.loads(board_config(plan, plan.calibration.thresholds, plan.calibration.peak_limits,
                                     plan.calibration.energy_limits, limit))
    config["build"] = re.search(r'CONFIG_DIGEST = "(\w+)"', (build / "faultline_config.py").read_text()).group(1)
    compiled = compile_model(load_model(autoencoder), "autoencoder", "test", RECIPE)
    _, starts, _, _, _ = reference(plan, recording)
    raw = np.stack([recording[s : s + 256, 0] for s in starts])
    expected = {s: v for s, v in zip(starts, judge(compiled, raw, plan.app, limit)) if v.decision != NORMAL}
    result = replay(board, recording, modules=build_firmware(build), config_json=json.dumps(config))
    assert "settings=file" in result.console
    windows = {p.fields["start_sample"]: p.fields for p in result.packets if p.kind == "WINDOW"}
    assert sorted(windows) == sorted(expected)
    for start, verdict in expected.items():
        assert (windows[start]["decision"], windows[start]["tier"], windows[start]["confidence_q8"]) == (
            verdict.decision, verdict.tier, verdict.confidence_q8)
    if name == "impact":
        at = scenarios["impact"][1]["impact_at"]
        assert any(start <= at < start + 256 for start in windows), "a window holding the impact reconstructs badly"
    else:
        assert len(windows) <= 0.05 * len(starts), "normal running reconstructs well"

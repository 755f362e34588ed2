"""`hostgen calibrate` on a machine's own recordings, and the build it feeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import app_with, assert_user_error, run_hostgen

from hostgen.data import synthetic as dataset


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """One machine: 2 minutes of normal running, and the same machine with an incipient and a developed fault."""
    root = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(21)
    machine = dataset.random_machine(rng, fault=False)
    paths = {"normal": root / "normal.npy"}
    np.save(paths["normal"], dataset.synthesize(machine, 120_000, rng))
    for name, counts in (("incipient", 900.0), ("developed", 1500.0)):
        paths[name] = root / f"{name}.npy"
        np.save(paths[name], dataset.synthesize(dataset.Machine(**{**machine.__dict__, "fault_counts": counts}), 30_000, rng))
    return paths


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTGEN_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


def test_calibrate_reports_rates_and_writes_the_calibration(recordings, build_dir):
    result = run_hostgen("calibrate", "--board", "esp32", "--normal", recordings["normal"],
                         "--fault", recordings["incipient"], "--fault", recordings["developed"], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    stored = json.loads((build_dir / "calibration" / "esp32.json").read_text())
    assert stored["thresholds"] == report["thresholds"] and stored["source"].startswith("recording")
    channel = report["report"]["channels"][0]
    assert channel["heldout_normal"]["flagged"] <= 0.05
    assert channel["fast_path"]["heldout_trips"] == 0
    faults = list(channel["faults"].values())
    assert faults[1]["flagged"] >= 0.95, "the developed fault"
    assert faults[0]["flagged"] > 4 * channel["heldout_normal"]["flagged"], "the incipient one, less surely at the default"
    assert report["rebuilt"] is None


def test_a_tighter_level_margin_trades_speed_robustness_for_incipient_faults(recordings, build_dir, tmp_path):
    """fallback.level_margin: rms and peak thresholds close to normal see an incipient fault at this machine's one speed."""
    app = app_with(tmp_path, level_margin="0.15")
    result = run_hostgen("calibrate", "--board", "esp32", "--app", app, "--normal", recordings["normal"],
                         "--fault", recordings["incipient"], "--json")
    assert result.returncode == 0, result.stderr
    channel = json.loads(result.stdout)["report"]["channels"][0]
    assert channel["heldout_normal"]["flagged"] <= 0.05
    assert list(channel["faults"].values())[0]["flagged"] >= 0.9


def test_calibration_is_reproducible(recordings, build_dir):
    first = run_hostgen("calibrate", "--board", "esp32", "--normal", recordings["normal"], "--json")
    second = run_hostgen("calibrate", "--board", "esp32", "--normal", recordings["normal"], "--json")
    assert json.loads(first.stdout)["thresholds"] == json.loads(second.stdout)["thresholds"]


def test_gen_uses_the_calibration_and_calibrate_rebuilds(recordings, build_dir, reference_tflite):
    assert run_hostgen("gen", "--board", "stm32f4", "--model", reference_tflite).returncode == 0
    synthetic = json.loads((build_dir / "stm32f4" / "config.json").read_text())
    assert synthetic["fallback"]["source"] == "synthetic"
    result = run_hostgen("calibrate", "--board", "stm32f4", "--normal", recordings["normal"], "--json")
    report = json.loads(result.stdout)
    assert report["rebuilt"] == str(build_dir / "stm32f4")
    config = json.loads((build_dir / "stm32f4" / "config.json").read_text())
    assert config["fallback"]["thresholds"] == report["thresholds"]
    assert config["fastpath"]["peak_limits"] == report["peak_limits"]
    fallback_py = (build_dir / "stm32f4" / "fallback.py").read_text()
    assert "(" + ", ".join(map(str, report["thresholds"][0])) + ", )" in fallback_py


def test_rate_redesigns_the_filter_for_the_recording(recordings, build_dir, reference_tflite, tmp_path):
    app = app_with(tmp_path, max_taps="127")
    too_few_taps = run_hostgen("calibrate", "--board", "esp32s3", "--normal", recordings["normal"], "--rate", "2000")
    assert_user_error(too_few_taps, "at most 63 taps")
    result = run_hostgen("calibrate", "--board", "esp32s3", "--normal", recordings["normal"], "--rate", "2000", "--app", app)
    assert result.returncode == 0, result.stderr
    assert run_hostgen("gen", "--board", "esp32s3", "--model", reference_tflite, "--app", app).returncode == 0
    config = json.loads((build_dir / "esp32s3" / "config.json").read_text())
    assert config["sampling"]["rate_hz"] == 2000 and config["filter"]["taps"] > 63


@pytest.mark.parametrize("problem", ["float", "three_d", "too_short", "empty", "channels", "not_numpy", "nyquist"])
def test_bad_recordings_are_refused_and_nothing_is_written(recordings, build_dir, tmp_path, problem):
    bad = tmp_path / "bad.npy"
    extra = []
    if problem == "float":
        np.save(bad, np.zeros(50_000, np.float64))
    elif problem == "three_d":
        np.save(bad, np.zeros((100, 10, 2), np.int16))
    elif problem == "too_short":
        np.save(bad, (np.arange(300) % 7).astype(np.int16))  # a live sensor, too short
    elif problem == "empty":
        np.save(bad, np.zeros(0, np.int16))
    elif problem == "channels":
        np.save(bad, np.zeros((50_000, 3), np.int16))
    elif problem == "not_numpy":
        bad.write_text("time,value\n0,1\n")
    else:
        bad = recordings["normal"]
        extra = ["--rate", "600"]
    fragment = {"float": "dtype float64", "three_d": "shape (100, 10, 2)", "too_short": "normal windows",
                "empty": "shape (0,)", "channels": "3 channel(s)", "not_numpy": "cannot read recording",
                "nyquist": "Nyquist"}[problem]
    assert_user_error(run_hostgen("calibrate", "--board", "esp32", "--normal", bad, *extra), fragment)
    assert not (build_dir / "calibration" / "esp32.json").exists()

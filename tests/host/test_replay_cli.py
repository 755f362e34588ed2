"""`hostgen replay`: a user checks a build against last week's recording."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_user_error, run_hostgen

from hostgen.data import synthetic as dataset


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rng = np.random.default_rng(12)
    machine = dataset.random_machine(rng, False)
    x = np.concatenate([dataset.synthesize(machine, 8000, rng),
                        dataset.synthesize(dataset.Machine(**{**machine.__dict__, "fault_counts": 3000.0}), 6000, rng)])
    x[5000:5020] = 30000
    path = tmp_path_factory.mktemp("replay") / "week.npy"
    np.save(path, x)
    return path


def test_replay_prints_packets_and_figures(recording):
    result = run_hostgen("replay", "--board", "esp32", "--data", recording)
    assert result.returncode == 0, result.stderr
    assert "boot faultline 0.1.0" in result.stdout and "fast path peak RAISED" in result.stdout
    assert "FAULT by model (" in result.stdout and "B/s raw" in result.stdout, "tier 2 runs the build's model"


def test_replay_json_lines(recording):
    result = run_hostgen("replay", "--board", "esp32", "--data", recording, "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    figures = lines[-1]["figures"]
    assert lines[0]["type"] == "BOOT" and figures["samples"] == 14_000 and figures["bad_frames"] == 0
    assert figures["packets"]["ALERT"] >= 1 and figures["heap_peak_bytes"] <= figures["heap_limit_bytes"]


def test_replay_on_the_smallest_board_says_which_heap_it_used(recording):
    result = run_hostgen("replay", "--board", "nucleo_f401re", "--data", recording)
    assert result.returncode == 0 and "a 32-bit estimate" in result.stderr


@pytest.mark.parametrize("make, fragment", [
    (lambda: np.zeros((100, 2, 2), np.int16), "shape (100, 2, 2)"),
    (lambda: np.zeros((5000, 3), np.int16), "3 channel(s)"),
    (lambda: np.zeros(5000, np.float32), "dtype float32"),
])
def test_bad_recordings(tmp_path, make, fragment):
    path = tmp_path / "bad.npy"
    np.save(path, make())
    assert_user_error(run_hostgen("replay", "--board", "esp32", "--data", path), fragment)


def test_rate_mismatch(recording):
    assert_user_error(run_hostgen("replay", "--board", "esp32", "--data", recording, "--rate", "2000"), "--rate 2000")

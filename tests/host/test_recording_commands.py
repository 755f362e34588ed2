"""`hostgen filter` and `hostgen fallback` on a user's recording, in each implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_user_error, run_hostgen, run_in_process

from hostgen.config.app import load_app
from hostgen.data import synthetic as dataset
from hostgen.dsp.fir import design_fir, filter_signal


@pytest.fixture(scope="module")
def two_channels(tmp_path_factory):
    rng = np.random.default_rng(8)
    a = dataset.synthesize(dataset.random_machine(rng, False), 6000, rng)
    b = dataset.synthesize(dataset.random_machine(rng, True), 6000, rng)
    path = tmp_path_factory.mktemp("rec") / "two.npy"
    np.save(path, np.stack([a, b], axis=1))
    return path


@pytest.mark.parametrize("impl", ["ref", "c", "micropython"])
def test_filter_each_implementation_matches_the_reference(two_channels, tmp_path, impl):
    out = tmp_path / f"{impl}.npy"
    result = run_hostgen("filter", "--board", "stm32f4", "--in", two_channels, "--out", out, "--impl", impl)
    assert result.returncode == 0, result.stderr
    expected = filter_signal(design_fir(load_app()).coeffs, np.load(two_channels))
    got = np.load(out)
    assert got.dtype == np.int16 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_fallback_gives_the_same_windows_in_every_implementation(tmp_path):
    rng = np.random.default_rng(9)
    recording = tmp_path / "fault.npy"
    np.save(recording, dataset.synthesize(dataset.random_machine(rng, True), 8000, rng))
    outputs = {}
    for impl in ("ref", "c", "micropython"):
        result = run_hostgen("fallback", "--board", "esp32", "--in", recording, "--impl", impl, "--json")
        assert result.returncode == 0, result.stderr
        outputs[impl] = json.loads(result.stdout)
    assert outputs["ref"]["windows"] == outputs["c"]["windows"] == outputs["micropython"]["windows"]
    assert len(outputs["ref"]["windows"]) == (8000 - 40 - 256) // 128 + 1
    assert outputs["ref"]["counts"]["fault"] > 0
    table = run_hostgen("fallback", "--board", "esp32", "--in", recording)
    assert "decision" in table.stdout and "windows (ref)" in table.stdout


def test_fallback_refuses_a_channel_mismatch(two_channels):
    assert_user_error(run_in_process("fallback", "--board", "esp32", "--in", two_channels), "2 channel(s)")


def test_filter_refuses_wrong_dtype(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(100, np.int32))
    out = tmp_path / "y.npy"
    assert_user_error(run_in_process("filter", "--board", "esp32", "--in", bad, "--out", out), "dtype int32")
    assert not out.exists()

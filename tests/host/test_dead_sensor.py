"""`hostgen calibrate` refuses a "normal" recording of a dead sensor, naming what the sensor did,
and writes no thresholds from it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_user_error, run_in_process

from hostgen.data import synthetic as dataset
from hostgen.data.recordings import refuse_dead_sensor
from hostgen.dsp.plan import calibration_path

SECONDS = 60


def square_wave():
    return np.where((np.arange(SECONDS * 1000) // 5) % 2 == 0, 32767, -32768)


def stuck_spells():
    rng = np.random.default_rng(3)
    x = dataset.synthesize(dataset.random_machine(rng, fault=False), SECONDS * 1000, rng)
    x[10_000:30_000] = x[10_000]
    return x


@pytest.mark.parametrize("make, words", [
    (lambda: np.zeros(SECONDS * 1000), "is flat at 0"),
    (square_wave, "at full scale in 100% of samples"),
    (stuck_spells, "is stuck"),
])
def test_a_dead_sensor_recording_is_refused(tmp_path, make, words):
    path = tmp_path / "normal.npy"
    np.save(path, make().astype(np.int16))
    before = calibration_path("esp32").read_bytes() if calibration_path("esp32").exists() else None
    assert_user_error(run_in_process("calibrate", "--board", "esp32", "--normal", path), words)
    after = calibration_path("esp32").read_bytes() if calibration_path("esp32").exists() else None
    assert after == before, "no thresholds from a dead sensor"


def test_a_live_sensor_passes(tmp_path):
    rng = np.random.default_rng(4)
    x = dataset.synthesize(dataset.random_machine(rng, fault=False), SECONDS * 1000, rng).astype(np.int16)
    refuse_dead_sensor(tmp_path / "normal.npy", x.reshape(-1, 1), 32767, 64)


def test_a_block_of_full_negative_scale_keeps_its_mean_square_a_32_bit_small_int():
    """(-32768)**2 is 2**30 exactly: one block of it is the only way to reach it, and it is capped one below."""
    from hostgen.dsp.fastpath import SMALL_INT_MAX, block_figures

    peaks, mean_squares = block_figures(np.full(16, -32768, np.int16), 8)
    assert list(peaks) == [32768, 32768] and list(mean_squares) == [SMALL_INT_MAX, SMALL_INT_MAX]
    _, below = block_figures(np.array([-32768] * 7 + [32767], np.int16), 8)
    assert below[0] == ((-32768) ** 2 * 7 + 32767**2) // 8 < SMALL_INT_MAX

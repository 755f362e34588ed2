"""periodicity: a stream's is the mean over the channel's last windows, which narrows normal running and keeps a defect."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hostgen.config.app import load_app
from hostgen.constants import FEATURES
from hostgen.data import synthetic as dataset
from hostgen.dsp.features import PERIOD_WINDOWS, features_of_windows, stream_features, window_features, windows_of
from hostgen.dsp.fir import design_fir, filter_signal

WINDOW, STRIDE = 256, 128
PERIODICITY = FEATURES.index("periodicity")


def machine_stream(seed: int, fault: str | None, seconds: int = 20):
    """(filtered, raw) of a machine at a varying speed and load, with a developed `fault` or none."""
    rng = np.random.default_rng(seed)
    machine = dataset.random_machine(rng, fault=fault is not None)
    if fault:
        machine = dataset.Machine(**{**machine.__dict__, "fault_kind": fault})
    samples = seconds * dataset.RATE_HZ
    speed, load = dataset.operating_profile(samples, rng, (0.6, 1.4), (0.5, 1.2), 3)
    raw = dataset.synthesize(machine, samples, rng, speed=speed, load=load)
    return filter_signal(design_fir(load_app()).coeffs, raw)[64:], raw[64:]


def own_features(filtered, raw):
    return features_of_windows(windows_of(filtered, WINDOW, STRIDE), windows_of(raw, WINDOW, STRIDE))


def test_a_streams_periodicity_is_the_mean_of_its_window_and_the_ones_before():
    filtered, raw = machine_stream(1, "inner_race", seconds=3)
    own, stream = own_features(filtered, raw), stream_features(filtered, raw, WINDOW, STRIDE)
    padded = np.concatenate([np.zeros(PERIOD_WINDOWS - 1, np.int64), own[:, PERIODICITY]])
    expected = [sum(padded[k : k + PERIOD_WINDOWS]) // PERIOD_WINDOWS for k in range(len(own))]
    assert stream[:, PERIODICITY].tolist() == expected
    others = [i for i in range(len(FEATURES)) if i != PERIODICITY]
    assert np.array_equal(stream[:, others], own[:, others])


def test_withheld_windows_keep_their_own_figure_and_stay_out_of_the_history():
    filtered, raw = machine_stream(2, "outer_race", seconds=3)
    own = own_features(filtered, raw)[:, PERIODICITY]
    judged = np.ones(len(own), bool)
    judged[5:7] = False
    stream = stream_features(filtered, raw, WINDOW, STRIDE, judged)[:, PERIODICITY]
    assert stream[5:7].tolist() == own[5:7].tolist()
    assert stream[7] == (own[7] + own[4] + own[3]) // PERIOD_WINDOWS


def test_the_mean_flags_more_of_a_defects_windows_over_a_threshold_from_normal_running():
    """Per machine (ten, none of the floor test's), as calibration does: a threshold of 1.3x the 99% quantile of its
    normal running, own window figures against the stream's; the stream's is never worse and better on the whole."""
    shares = {"own": [], "stream": []}
    for seed in range(101, 111):
        filtered, raw = machine_stream(seed, None, seconds=40)
        normal = {"own": own_features(filtered, raw), "stream": stream_features(filtered, raw, WINDOW, STRIDE)}
        for fault in ("outer_race", "inner_race"):
            filtered, raw = machine_stream(seed, fault)
            faulty = {"own": own_features(filtered, raw), "stream": stream_features(filtered, raw, WINDOW, STRIDE)}
            for kind in shares:
                threshold = 1.3 * np.quantile(normal[kind][:, PERIODICITY], 0.99)
                shares[kind].append(np.mean(faulty[kind][PERIOD_WINDOWS:, PERIODICITY] >= threshold))
    own, stream = np.array(shares["own"]), np.array(shares["stream"])
    assert (stream >= own).all(), shares
    assert stream.mean() >= own.mean() + 0.04, shares


windows = st.lists(st.integers(-32768, 32767), min_size=WINDOW, max_size=WINDOW)


@settings(max_examples=100, deadline=None)
@given(windows, windows)
def test_a_windows_periodicity_is_at_most_256_so_the_history_sum_fits_31_bits(filtered, raw):
    """r(lag) <= r(0): each figure <= 256, the sum of PERIOD_WINDOWS of them <= 768."""
    own = window_features(np.array(filtered, np.int16), np.array(raw, np.int16))[PERIODICITY]
    assert 0 <= own <= 256


def test_a_repeating_envelope_reaches_the_bound():
    """A full-scale impulse every 8 samples repeats exactly: one window's figure is near 256, the stream's reaches it."""
    pulses = np.where(np.arange(4 * WINDOW) % 8 == 0, 32767, 0).astype(np.int16)
    own = window_features(pulses[:WINDOW], pulses[:WINDOW])[PERIODICITY]
    stream = stream_features(pulses, pulses, WINDOW, STRIDE)[:, PERIODICITY]
    assert own >= 240 and stream[PERIOD_WINDOWS - 1 :].min() == own

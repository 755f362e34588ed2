"""What recall at <= 1% false alarms the reference model's held-out windows support at all.

Run once, by hand: `python -m hostgen.model.ceiling [--cnn]`. On exactly the reference's held-out
sets (hostgen/model/reference.py), it prints the shipped reference int8 model's figures, then:

- an oracle detector that knows the generator and each window's draw of it: it removes the window's
  shaft harmonics and offset exactly, knows its white-noise level, resonance and ringing decay, and
  knows neither the impulse times nor their strengths. Its statistic is the energy of the window
  through a filter matched to the ringing, over the known noise level. No detector that has to
  estimate those from 256 samples does better than one that is given them, short of one that
  also knows the impulse times;
- with --cnn, a much larger float model than a board takes (about 49,000 parameters, full-rate
  convolutions, 3.5x the reference's training windows) on the window high-passed above 150 Hz
  and divided by its own RMS: what learning from the data reaches without that knowledge.

Both choose their cut on the reference's validation sets (at most 0.5% false alarms on each, as
the reference does) and report held-out figures; beside them, the recall at the held-out set's own
1% cut (the most any cut allows there), then recall per fault-to-noise ratio: the energy the
fault adds to the window over the energy of its white noise.
"""

from __future__ import annotations

import argparse
import copy
from contextlib import contextmanager

import numpy as np

from hostgen.data import synthetic as dataset
from hostgen.model import reference
from hostgen.model.tflite import load_model
from hostgen.model.tflm_run import tflm_predict

RATIO_BINS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, np.inf)
HIGH_PASS_HZ = 150  # above the shaft's 3x harmonic at the fastest speed (32 Hz x 1.4 x 3 = 134 Hz)
EXTRA_TRAIN_SEEDS = (21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45)
EXTRA_TRAIN_WINDOWS = 2000  # per seed; odd seeds at the shifted operating points


@contextmanager
def _recorded_draws():
    """Every synthesize() call make_windows makes, with the generator state it started from."""
    calls, original = [], dataset.synthesize

    def recording(machine, samples, rng, rate_hz=dataset.RATE_HZ, speed=None, load=None):
        calls.append((machine, samples, copy.deepcopy(rng.bit_generator.state), rate_hz, speed, load))
        return original(machine, samples, rng, rate_hz, speed, load)

    dataset.synthesize = recording
    try:
        yield calls
    finally:
        dataset.synthesize = original


def _replay(call, **changes) -> np.ndarray:
    machine, samples, state, rate_hz, speed, load = call
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return dataset.synthesize(dataset.Machine(**{**machine.__dict__, **changes}), samples, rng, rate_hz, speed, load).astype(np.float64)


def windows_with_parts(seed: int, count: int, shifted: bool) -> dict:
    """A reference set's windows, labels, and per window its oracle statistic and fault-to-noise ratio."""
    with _recorded_draws() as calls:
        counts, labels = reference.generated_windows(seed, count, shifted)
    if not all(np.array_equal(_replay(call), window) for call, window in zip(calls, counts)):
        raise AssertionError("replaying the generator's draws did not give its windows back: the oracle would be of other windows")
    statistics, ratios = [], []
    for call, window in zip(calls, counts):
        machine, samples, _, rate_hz, speed, load = call
        machine_alone = _replay(call, noise_counts=0.0, fault_counts=0.0)  # harmonics, gain and offset: the same draws
        no_fault = _replay(call, fault_counts=0.0)
        tail = slice(samples - dataset.WINDOW, samples)
        residual = (window.astype(np.float64) - machine_alone)[tail]
        noise = (no_fault - machine_alone)[tail]
        ratios.append(float(np.sum((window - no_fault)[tail] ** 2) / np.sum(noise**2)) if machine.fault_counts else np.nan)
        level = machine.noise_counts * machine.gain * (1.0 if speed is None else speed[0] * load[0])
        k = np.arange(int(6 * machine.decay_s * rate_hz))
        ring = np.exp(-k / (machine.decay_s * rate_hz)) * np.sin(2 * np.pi * machine.resonance_hz * k / rate_hz)
        matched = np.correlate(residual, ring, "valid")
        statistics.append(float(np.mean(matched**2) / (level**2 * np.sum(ring**2))))
    return {"counts": counts, "labels": labels, "statistic": np.array(statistics), "ratio": np.array(ratios)}


def validation_cut(scores: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> float:
    names = ("validation", "validation_shifted")
    return reference.operating_cut([scores[n] for n in names], [labels[n] for n in names], reference.RECIPE["validation_max_false_alarms"])


def report(name: str, scores: dict[str, np.ndarray], labels: dict[str, np.ndarray], ratios: dict[str, np.ndarray],
           cut: float | None = None) -> None:
    cut = validation_cut(scores, labels) if cut is None else cut
    for part in reference.HELD_OUT:
        flagged, y, ratio = scores[part] > cut, labels[part], ratios[part]
        faults, fault_ratio = flagged[y == 1], ratio[y == 1]
        bins = []
        for low, high in zip(RATIO_BINS[:-1], RATIO_BINS[1:]):
            inside = (fault_ratio >= low) & (fault_ratio < high)
            bins.append(f"[{low:g}, {high:g}): {faults[inside].mean():.2f} of {int(inside.sum())}")
        own = reference.operating_cut([scores[part]], [y], reference.TARGET_MAX_FALSE_ALARMS)  # the most this set allows at <= 1%
        print(f"{name}, {part}: false alarms {np.mean(flagged[y == 0]):.4f} at fault recall {faults.mean():.4f} "
              f"(at the set's own 1% cut, {np.mean(scores[part][y == 0] > own):.4f} at {np.mean(scores[part][y == 1] > own):.4f}); "
              f"recall by fault-to-noise energy ratio {'; '.join(bins)}")


def high_passed(counts: np.ndarray) -> np.ndarray:
    """The last WINDOW samples above HIGH_PASS_HZ, over their own RMS: (n, WINDOW, 1) float32."""
    x = counts[:, -dataset.WINDOW :].astype(np.float64)
    spectrum = np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1)
    spectrum[:, np.fft.rfftfreq(dataset.WINDOW, 1 / dataset.RATE_HZ) < HIGH_PASS_HZ] = 0
    y = np.fft.irfft(spectrum, dataset.WINDOW, axis=1)
    return (y / (y.std(axis=1, keepdims=True) + 1e-9))[..., np.newaxis].astype(np.float32)


def large_float_model_scores(parts: dict) -> dict[str, np.ndarray]:
    from hostgen.model import quantize

    tf = quantize.import_tensorflow()
    tf.keras.utils.set_random_seed(reference.RECIPE["init_seed"])
    layers = tf.keras.layers
    train = [reference.generated_windows(*reference.SETS[name]) for name in ("train", "train_shifted")]
    train += [reference.generated_windows(seed, EXTRA_TRAIN_WINDOWS, seed % 2 == 1) for seed in EXTRA_TRAIN_SEEDS]
    x = np.concatenate([high_passed(counts) for counts, _ in train])
    y = np.concatenate([labels for _, labels in train])
    model = tf.keras.Sequential([
        tf.keras.Input((dataset.WINDOW, 1)),
        layers.Conv1D(32, 9, padding="same", activation="relu"),
        layers.Conv1D(32, 9, padding="same", activation="relu"),
        layers.MaxPooling1D(2),
        layers.Conv1D(64, 7, padding="same", activation="relu"),
        layers.MaxPooling1D(2),
        layers.Conv1D(64, 5, padding="same", activation="relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(64, activation="relu"),
        layers.Dense(2, activation="softmax"),
    ])
    epochs, batch = 20, 128
    schedule = tf.keras.optimizers.schedules.CosineDecay(2e-3, epochs * -(-len(x) // batch))
    model.compile(tf.keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, class_weight={0: reference.RECIPE["normal_weight"], 1: 1.0})
    return {part: model.predict(high_passed(parts[part]["counts"]), verbose=0)[:, 1] for part in parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cnn", action="store_true", help="also train the large float model (minutes)")
    args = parser.parse_args()
    parts = {part: windows_with_parts(*reference.SETS[part]) for part in ("validation", "validation_shifted", *reference.HELD_OUT)}
    labels = {part: parts[part]["labels"] for part in parts}
    ratios = {part: parts[part]["ratio"] for part in parts}
    tflite = reference.reference_tflite()
    shipped = {part: tflm_predict(load_model(tflite), reference.model_input(parts[part]["counts"])).argmax(1) for part in parts}
    report("the reference int8 model (its own cut)", shipped, labels, ratios, cut=0.5)
    report("oracle matched filter", {part: parts[part]["statistic"] for part in parts}, labels, ratios)
    if args.cnn:
        report("large float model", large_float_model_scores(parts), labels, ratios)


if __name__ == "__main__":
    main()

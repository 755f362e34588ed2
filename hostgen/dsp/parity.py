"""Parity: the reference, the compiled C and MicroPython on the same vectors, compared exactly."""

from __future__ import annotations

import itertools

import numpy as np

from hostgen.data import synthetic as dataset
from hostgen.dsp.fir import FirReference
from hostgen.dsp.runners import IMPLEMENTATIONS, MAX_BLOCK, DspRunner

FULL = 32767
LOWEST = -32768


def stream_vectors(samples_each: int, coeffs: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Streams that reach every corner of the integer semantics."""
    rng = np.random.default_rng(seed)
    n = samples_each
    t = np.arange(n)
    sign_matched = np.where(np.resize(coeffs[::-1], n) >= 0, FULL, LOWEST)
    impulses = np.zeros(n, np.int64)
    spots = rng.choice(n, size=n // 50, replace=False)
    impulses[spots] = rng.choice([FULL, LOWEST, 20000, -20000], size=len(spots))
    machine = dataset.random_machine(rng, fault=True)
    run_lengths = rng.integers(1, 40, n)
    return {
        "random": rng.integers(LOWEST, FULL + 1, n),
        "full_scale": np.repeat(np.resize([FULL, LOWEST], n), run_lengths)[:n],
        "sign_matched": sign_matched,
        "saturating": np.clip(np.round(1.6 * FULL * np.sin(2 * np.pi * 37.3 * t / 1000)), LOWEST, FULL),
        "impulsive": impulses,
        "silence": np.zeros(n, np.int64),
        "vibration": dataset.synthesize(machine, n, rng),
        "wrapping_ramps": (np.cumsum(rng.integers(-900, 901, n)) % 65536) - 32768,
    }


def uneven_blocks(total: int, rng: np.random.Generator) -> list[int]:
    blocks, done = [], 0
    while done < total:
        size = int(min(rng.integers(1, 98), total - done))
        blocks.append(size)
        done += size
    return blocks


def window_vectors(count: int, window: int, coeffs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(filtered windows, their raw samples): synthetic ones (normal and fault) plus windows at the extremes.

    An extreme window is paired with the next one's samples as its raw window, so every extreme
    is seen both ways.
    """
    rng = np.random.default_rng(seed)
    special = [
        np.zeros(window),
        np.full(window, FULL),
        np.full(window, LOWEST),
        np.where(np.arange(window) % 2 == 0, FULL, LOWEST),
        np.where(np.arange(window) // 4 % 2 == 0, FULL, LOWEST),  # reverses at the shortest half turn
        np.round(FULL * np.sin(np.pi * np.arange(window) / 21)),
        np.round(FULL * np.sin(np.pi * np.arange(window) / 50)),  # unbalance's lobe runs past PERIOD_LAGS...
        np.round(FULL * np.sin(np.pi * np.arange(window) / 100)),  # ...and past TURN_LAGS
        np.round(FULL * np.sin(np.pi * np.arange(window) / 5)),  # ...and starts before them
        np.eye(1, window, window // 2)[0] * FULL,
        np.eye(1, window, 3)[0] * LOWEST,
        np.linspace(LOWEST, FULL, window).round(),
        np.where(np.arange(window) < window // 2, LOWEST, FULL),
        np.full(window, 5),
        (np.arange(window) % 3) - 1,
    ]
    random = [rng.integers(LOWEST, FULL + 1, window) for _ in range(count // 10)]
    scaled = [np.clip(rng.normal(0, 10 ** rng.uniform(0, 4.5), window), LOWEST, FULL).round() for _ in range(count // 10)]
    extremes = special + random + scaled
    synthetic_count = max(0, count - len(extremes))
    counts, _ = dataset.make_windows(seed, synthetic_count, fault_fraction=0.5, window=window + len(coeffs))
    filtered = [FirReference(coeffs).process(w)[-window:] for w in counts]
    raws = extremes[1:] + extremes[:1] + [w[-window:] for w in counts]
    return (np.array(extremes + filtered, np.int64).reshape(-1, window).astype(np.int16),
            np.array(raws, np.int64).reshape(-1, window).astype(np.int16))


def _mismatches(outputs: dict[str, np.ndarray]) -> dict[str, dict]:
    report = {}
    for first, second in itertools.combinations(IMPLEMENTATIONS, 2):
        a, b = outputs[first], outputs[second]
        if a.shape != b.shape:
            report[f"{first}-{second}"] = {"mismatches": -1, "note": f"shapes differ: {a.shape} vs {b.shape}"}
            continue
        differing = np.nonzero(np.any(a != b, axis=tuple(range(1, a.ndim))) if a.ndim > 1 else a != b)[0]
        entry = {"mismatches": int(len(differing))}
        if len(differing):
            entry["first_at"] = int(differing[0])
        report[f"{first}-{second}"] = entry
    return report


def run_parity(runner: DspRunner, samples: int, windows: int, seed: int = 2026) -> dict:
    coeffs = runner.plan.design.coeffs
    vectors = stream_vectors(max(1, samples // 8), coeffs, seed)
    rng = np.random.default_rng(seed)
    stream_report, total_samples = {}, 0
    for name, vector in vectors.items():
        vector = vector.astype(np.int16)
        blocks = uneven_blocks(len(vector), rng)
        outputs = {impl: runner.filter(impl, vector, blocks) for impl in IMPLEMENTATIONS}
        whole = [min(MAX_BLOCK, len(vector) - s) for s in range(0, len(vector), MAX_BLOCK)]
        stream_report[name] = {
            "samples": len(vector),
            "blocks": len(blocks),
            "pairs": _mismatches(outputs),
            "block_independent": bool(np.array_equal(runner.filter("ref", vector, whole), outputs["ref"])),
            "saturated_outputs": int(np.count_nonzero((outputs["ref"] == FULL) | (outputs["ref"] == LOWEST))),
        }
        total_samples += len(vector)
    window = runner.plan.app["sampling"]["window_samples"]
    cases, raws = window_vectors(windows, window, coeffs, seed)
    window_report = {}
    for channel, thresholds in enumerate(runner.plan.calibration.thresholds):
        outputs = {impl: runner.fallback(impl, cases, raws, thresholds) for impl in IMPLEMENTATIONS}
        decisions = outputs["ref"][:, -3]
        window_report[f"channel {channel}"] = {
            "windows": len(cases),
            "pairs": _mismatches(outputs),
            "decisions": {name: int(np.count_nonzero(decisions == level)) for level, name in enumerate(("normal", "suspect", "fault"))},
        }
    all_pairs = [p for entry in (*stream_report.values(), *window_report.values()) for p in entry["pairs"].values()]
    return {
        "filter": runner.plan.design.summary()["name"],
        "taps": runner.plan.design.taps,
        "micropython_heap_bytes": runner.heap_bytes,
        "samples": total_samples,
        "windows": len(cases) * len(window_report),
        "streams": stream_report,
        "fallback": window_report,
        "mismatches": int(sum(max(p["mismatches"], 0) + (p["mismatches"] < 0) for p in all_pairs)),
    }

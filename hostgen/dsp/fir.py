"""FIR filters: designed with scipy, quantized to Q15, checked against their spec.

Fixed-point semantics, which the C and MicroPython versions match bit for bit:

    acc  = sum(h[k] * x[n - k] for k in 0..N-1)     int16 * int16 products, exact sum
    y[n] = saturate_int16((acc + 2**14) >> 15)       round half up; >> is arithmetic (floor)

`x[n - k]` before the first sample is 0; a stream cut into blocks carries the last
N-1 inputs from block to block. The accumulator is exact: |acc| < 2**38 for up to 255
taps. C holds it in an int64_t. MicroPython keeps two 32-bit-safe partial sums, the
high and the low 16 bits of each product (|hi| < 2**22, 0 <= lo < 2**24), and since
hi * 2**16 is a multiple of 2**15, y = saturate(2 * hi + ((lo + 2**14) >> 15)) exactly.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from hostgen.errors import HostgenError
from hostgen.util.cache import cached_json, code_key

Q15_ONE = 1 << 15
ROUND = 1 << 14
RESPONSE_POINTS = 8192


@dataclass(frozen=True)
class FirDesign:
    name: str
    kind: str
    rate_hz: int
    float_taps: np.ndarray
    coeffs: np.ndarray  # int16 Q15, symmetric
    passband: list[tuple[float, float]]
    stopband: list[tuple[float, float]]
    passband_ripple_db: float
    stopband_db: float
    spec: dict

    @property
    def taps(self) -> int:
        return len(self.coeffs)

    @property
    def group_delay_samples(self) -> float:
        return (self.taps - 1) / 2

    def summary(self) -> dict:
        return {
            "name": self.name,
            "type": self.kind,
            "taps": self.taps,
            "design": self.spec["design"],
            "passband_hz": self.passband,
            "stopband_hz": self.stopband,
            "passband_ripple_db": round(self.passband_ripple_db, 3),
            "stopband_attenuation_db": round(self.stopband_db, 2),
            "group_delay_samples": self.group_delay_samples,
            "group_delay_ms": round(1000 * self.group_delay_samples / self.rate_hz, 3),
            "accumulator": "exact (int64 in C; two 32-bit partial sums in MicroPython)",
        }


def band_edges(spec: dict, rate_hz: int, where: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Passband and stopband intervals in Hz, refusing edges outside (0, Nyquist)."""
    nyquist = rate_hz / 2
    width = spec["transition_hz"]
    edges = [float(e) for e in spec["band_hz"]]
    for edge in edges:
        if not 0 < edge < nyquist:
            raise HostgenError(
                f"{where}: filter.band_hz edge {edge:g} Hz is outside (0, {nyquist:g}) Hz, the Nyquist range at "
                f"{rate_hz} Hz; lower it or raise sampling.rate_hz"
            )
    kind = spec["type"]
    if kind == "lowpass":
        passband, stopband = [(0.0, edges[0])], [(edges[0] + width, nyquist)]
    elif kind == "highpass":
        passband, stopband = [(edges[0], nyquist)], [(0.0, edges[0] - width)]
    else:
        low, high = sorted(edges)
        passband, stopband = [(low, high)], [(0.0, low - width), (high + width, nyquist)]
    for start, stop in stopband:
        if not 0 <= start < stop <= nyquist:
            raise HostgenError(
                f"{where}: the {width:g} Hz transition from band edge(s) {edges} puts a stopband outside "
                f"0..{nyquist:g} Hz (Nyquist); narrow filter.transition_hz or move the band edges"
            )
    return passband, stopband


def _float_taps(spec: dict, rate_hz: int, numtaps: int, passband, stopband) -> np.ndarray:
    from scipy import signal

    width = spec["transition_hz"]
    kind = spec["type"]
    if spec["design"] == "kaiser":
        beta = signal.kaiser_beta(signal.kaiser_atten(numtaps, width / (rate_hz / 2)))
        beta = max(beta, signal.kaiser_beta(spec["stopband_db"]))
        if kind == "lowpass":
            cutoff, pass_zero = passband[0][1] + width / 2, True
        elif kind == "highpass":
            cutoff, pass_zero = passband[0][0] - width / 2, False
        else:
            cutoff, pass_zero = [passband[0][0] - width / 2, passband[0][1] + width / 2], False
        return signal.firwin(numtaps, cutoff, window=("kaiser", beta), pass_zero=pass_zero, fs=rate_hz)
    ripple = 10 ** (spec["passband_ripple_db"] / 20)
    pass_weight = (ripple + 1) / (ripple - 1)
    stop_weight = 10 ** (spec["stopband_db"] / 20)
    bands, desired, weights = [], [], []
    for interval, gain, weight in sorted(
        [(b, 1.0, pass_weight) for b in passband] + [(b, 0.0, stop_weight) for b in stopband]
    ):
        bands += list(interval)
        desired.append(gain)
        weights.append(weight)
    return signal.remez(numtaps, bands, desired, weight=weights, fs=rate_hz, maxiter=100)


def quantize_q15(taps: np.ndarray) -> np.ndarray:
    """Round to Q15 (half up) and saturate; mirrored so the quantized filter stays linear-phase."""
    half = (len(taps) + 1) // 2
    first = np.clip(np.floor(taps[:half] * Q15_ONE + 0.5), -Q15_ONE, Q15_ONE - 1).astype(np.int16)
    return np.concatenate([first, first[: len(taps) // 2][::-1]])


def achieved_response(coeffs: np.ndarray, rate_hz: int, passband, stopband) -> tuple[float, float]:
    """(largest passband deviation from 0 dB, smallest stopband attenuation), in dB."""
    from scipy import signal

    freqs, response = signal.freqz(coeffs.astype(np.float64) / Q15_ONE, worN=RESPONSE_POINTS, fs=rate_hz)
    magnitude = np.maximum(np.abs(response), 1e-12)
    in_pass = np.zeros(len(freqs), bool)
    for low, high in passband:
        in_pass |= (freqs >= low) & (freqs <= high)
    in_stop = np.zeros(len(freqs), bool)
    for low, high in stopband:
        in_stop |= (freqs >= low) & (freqs <= high)
    ripple = float(np.max(np.abs(20 * np.log10(magnitude[in_pass]))))
    attenuation = float(-20 * np.log10(np.max(magnitude[in_stop])))
    return ripple, attenuation


def design_fir(app: dict) -> FirDesign:
    """The fewest taps (or exactly `taps`) whose Q15 coefficients meet the spec; else an error.

    A design is cached by its spec, the rate, this module and scipy's version, so a command whose filter was
    designed before does not import scipy.signal (a second of every command's start).
    """
    spec, rate = app["filter"], app["sampling"]["rate_hz"]
    key = code_key(sys.modules[__name__], metadata.version("scipy"), json.dumps([spec, rate], sort_keys=True))
    figures = cached_json("fir", key, lambda: _design(app))
    return FirDesign(spec["name"], spec["type"], rate, np.array(figures["float_taps"], np.float64), np.array(figures["coeffs"], np.int16),
                     [tuple(band) for band in figures["passband"]], [tuple(band) for band in figures["stopband"]],
                     figures["passband_ripple_db"], figures["stopband_db"], spec)


def _design(app: dict) -> dict:
    from scipy import signal

    spec, rate = app["filter"], app["sampling"]["rate_hz"]
    where = str(app["path"])
    passband, stopband = band_edges(spec, rate, where)
    if spec["taps"]:
        if spec["taps"] > spec["max_taps"]:
            raise HostgenError(f"{where}: filter.taps {spec['taps']} exceeds filter.max_taps {spec['max_taps']}")
        candidates = [spec["taps"]]
    else:
        estimate, _ = signal.kaiserord(spec["stopband_db"], spec["transition_hz"] / (rate / 2))
        start = max(3, (estimate - 8) | 1)
        candidates = list(range(start, spec["max_taps"] + 1, 2)) or [spec["max_taps"]]
    best = None
    for numtaps in candidates:
        taps = _float_taps(spec, rate, numtaps, passband, stopband)
        coeffs = quantize_q15(taps)
        ripple, attenuation = achieved_response(coeffs, rate, passband, stopband)
        best = (numtaps, ripple, attenuation)
        if coeffs.any() and ripple <= spec["passband_ripple_db"] and attenuation >= spec["stopband_db"]:  # all-zero taps pass nothing
            return {"float_taps": taps.tolist(), "coeffs": coeffs.tolist(), "passband": passband, "stopband": stopband,
                    "passband_ripple_db": ripple, "stopband_db": attenuation}
    numtaps, ripple, attenuation = best
    raise HostgenError(
        f"{where}: filter '{spec['name']}' cannot meet its spec with at most {candidates[-1]} taps after Q15 "
        f"quantization (best: ripple {ripple:.2f} dB vs {spec['passband_ripple_db']} allowed, stopband "
        f"{attenuation:.1f} dB vs {spec['stopband_db']} wanted); raise filter.max_taps, widen filter.transition_hz "
        "or relax the ripple/attenuation"
    )


class FirReference:
    """The reference streaming filter: exact integer arithmetic, state carried across calls."""

    def __init__(self, coeffs: np.ndarray):
        self.coeffs = coeffs.astype(np.int64)
        self.history = np.zeros(len(coeffs) - 1, np.int64)

    def process(self, block: np.ndarray) -> np.ndarray:
        samples = np.concatenate([self.history, block.astype(np.int64)])
        acc = np.convolve(samples, self.coeffs)[len(self.history) : len(samples)]
        self.history = samples[len(samples) - len(self.history) :]
        return np.clip((acc + ROUND) >> 15, -32768, 32767).astype(np.int16)


def filter_signal(coeffs: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Filter a whole recording, (samples,) or (samples, channels), each channel on its own."""
    if samples.ndim == 1:
        return FirReference(coeffs).process(samples)
    return np.stack([FirReference(coeffs).process(samples[:, c]) for c in range(samples.shape[1])], axis=1)


def response_plot(design: FirDesign) -> bytes:
    """PNG of the designed (float) and the quantized (Q15) magnitude response, with the spec."""
    import matplotlib
    from scipy import signal

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.2), dpi=100)
    for taps, label, style in ((design.float_taps, "designed (float)", "-"), (design.coeffs / Q15_ONE, "quantized (Q15)", "--")):
        freqs, response = signal.freqz(taps, worN=RESPONSE_POINTS, fs=design.rate_hz)
        axis.plot(freqs, 20 * np.log10(np.maximum(np.abs(response), 1e-9)), style, label=label)
    for low, high in design.stopband:
        axis.hlines(-design.spec["stopband_db"], low, high, colors="red", linewidth=2)
    for low, high in design.passband:
        for level in (design.spec["passband_ripple_db"], -design.spec["passband_ripple_db"]):
            axis.hlines(level, low, high, colors="green", linewidth=1)
    axis.set_ylim(-design.spec["stopband_db"] - 40, 5)
    axis.set_xlabel("frequency (Hz)")
    axis.set_ylabel("gain (dB)")
    axis.set_title(
        f"fir_{design.name}: {design.kind}, {design.taps} taps, ripple {design.passband_ripple_db:.2f} dB, "
        f"stopband {design.stopband_db:.1f} dB"
    )
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower left")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()

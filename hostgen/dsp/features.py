"""Integer window features and the fallback decision: the reference the C and MicroPython match.

Per window of W samples (W a power of two, L = log2 W), all integer, every intermediate
inside 31 bits so a 32-bit MCU computes the same. Every feature but the last two is of the
filtered window x; once_per_turn and unbalance are of the raw window (the same samples before
the FIR), because a once-per-turn force lies below the filter's band:

    mean      = sum(x) >> L                                   |sum| <= 2**24
    d[i]      = clamp(x[i] - mean, -32768, 32767)
    rms       = isqrt((sum((d*d) >> 9) << (9 - L)) + (sum((d*d) & 511) >> L))
                = isqrt(sum(d*d) // W) exactly: terms <= 2**21 and < 512, sums <= 2**30 and < 2**18
                (quiet windows keep their precision: d*d >> 9 alone drops every |d| < 23)
    peak      = max |d|
    crest     = (peak << 8) // rms            crest factor, Q8 (0 when rms is 0)
    kurtosis  = sum(min((|d| << 4) // rms, 127)**4 >> 8) >> L  kurtosis, Q8: 768 for Gaussian noise
    zcr       = count of sign changes of d (d >= 0 counts as positive)
    periodicity = the mean of the channel's last PERIOD_WINDOWS envelope periodicities, Q8, each
                max over lags PERIOD_LAGS of (r(lag) << 8) // r(0), where
                u[i] = min((|d| << 4) // rms, 127) - (sum(u) >> L) is the mean-removed envelope in units
                of rms and r(lag) = sum(u[i] * u[i + lag]): how strongly the envelope repeats at one
                period, as a bearing defect's impulse train does at any speed and load (Gaussian noise:
                about 0.15); |u| < 128, so r <= 2**22 and r << 8 <= 2**30. One window's figure spreads
                so widely (a defect's 0.2-0.4 beside normal running's 0.15-0.3) that a threshold above
                normal running misses a fifth of a weak defect's windows; a defect lasts, so the mean over
                the window and the PERIOD_WINDOWS - 1 before it on the channel (0 before the first,
                each at its own lag as the speed moves) narrows normal running's spread and keeps the
                defect's. r(lag) <= r(0), so each figure <= 256 and their sum <= 768
    once_per_turn = min(h // max((c(0) - h) >> 8, 1), ONCE_PER_TURN_CAP): how far one component that
                reverses every half turn dominates the raw window, as imbalance makes the shaft's 1x
                force do, Q8 of the rest of the window's energy. q[i] = the raw window minus its mean
                (clamped to int16), shifted so its peak has 10 bits (|q| <= 2**10; 0 when the window is
                flat); c(lag) = sum(q[i] * q[i + lag]) (|c| <= 2**28); h = max over PERIOD_LAGS of
                (-c(lag) // (W - lag)) << L, the deepest anticorrelation per overlapping sample, scaled to
                W (<= 2**28.5): a sinusoid's half period at any speed (one turn at 1 kHz is 8-126 samples
                for 8-125 Hz shafts); the rest is c(0) - h. Normalised by the window's own energy, it
                holds across speed and load
    unbalance = (isqrt(a) * (turn**2 >> 10)) >> (18 - bits): the once-per-turn amplitude times the half turn
                squared, as the unbalance m e = F / w**2 is the 1x force over the shaft speed squared: it holds
                across speed, and imbalance moves it either way (added unbalance adds to the residual one as a
                vector), so it has rules both above and below (BASELINE_FEATURES). With the same q and c
                over TURN_LAGS, k(lag) = -c(lag) / (W - lag) (division truncated towards 0; |k| <= 2**20):
                the half-turn lobe is the first run of lags with k > 0 that reaches half the largest k over
                PERIOD_LAGS, followed past them while k stays positive (so the board computes lags beyond
                PERIOD_LAGS only for a shaft slow enough to need them, under about 12 Hz);
                a is its largest k (the 1x's mean square, less the 2x's, in q's units), turn its two
                zero crossings' lags added, each interpolated in 1/16 sample ((k << 4) <= 2**24 over a
                difference of k's <= 2**21): the full turn in 1/16 sample (<= 2 * 95 * 16,
                turn**2 >> 10 <= 2**13.2), whatever the harmonics' mix, because
                c is symmetric about the half turn; bits the raw peak's bit length (<= 16), which
                puts q's amplitude back in counts. isqrt(a) <= 2**10, the product <= 2**23.2, the
                value <= 2**21.2. 0 when the window is flat or has no anticorrelation. Both crossings
                are seen for shafts of 7.9-62.5 Hz at 1 kHz (a quarter turn from lag 4, three quarters
                to 95); beyond, the range's end stands in for the unseen one and the figure drifts

A window judged alone (window_features, features_of_windows) has its own envelope periodicity;
a stream's windows (stream_features, the board) the mean over the channel's history
(with_period_history), which the windows the board withholds for a bad sensor do not join.

The decision walks the rules in order, fault rules first: the first feature at or over
its threshold (at or under, for a lower rule) decides (fault or suspect) and names the rule;
none means normal. The score is the largest feature / suspect-threshold ratio over the rules
(threshold / feature for a lower rule, the threshold counted up to BELOW_SCORE_CAP), Q8, capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt

import numpy as np

from hostgen.constants import DECISIONS, FAULT, FEATURES, NO_RULE, NORMAL, SUSPECT

PERIOD_LAGS = range(4, 64)  # 4-63 samples at 1 kHz: defect impulse trains and the once-per-turn modulation of an inner-race one
PERIOD_WINDOWS = 3  # a stream's periodicity is the mean over this many windows: 512 samples at stride 128
SCORE_CAP = 65535
KURTOSIS_CLAMP = 127
TURN_PEAK_BITS = 10  # once_per_turn's samples are scaled so the peak has this many bits
ONCE_PER_TURN_CAP = 2**22 - 1  # so the score's feature << 8 stays inside 31 bits
TURN_LAGS = range(PERIOD_LAGS[0], 96)  # the half-turn lobe, a quarter to three quarters of a turn: 7.9-62.5 Hz shafts
BELOW_SCORE_CAP = 2**22 - 1  # a lower rule's threshold counts up to this in the score, so its << 8 stays inside 31 bits
CROSSING_BITS = 4  # a lobe's zero crossings are interpolated to 1/16 sample
BASELINE_FEATURES = ("unbalance",)  # a change from normal either way is the fault: rules above and below


@dataclass(frozen=True)
class Rule:
    feature: str
    level: int  # SUSPECT or FAULT
    below: bool = False  # fires at or under its threshold (BASELINE_FEATURES), else at or over it

    @property
    def index(self) -> int:
        return FEATURES.index(self.feature)

    @property
    def label(self) -> str:
        return f"{self.feature}{'<=' if self.below else '>='}{DECISIONS[self.level]}"

    def fires(self, value: int, threshold: int) -> bool:
        return value <= threshold if self.below else value >= threshold


def rules_for(decide_on: list[str]) -> list[Rule]:
    """Fault rules first, then suspect rules, each in FEATURES order, a baseline feature's lower rule after its upper."""
    chosen = [f for f in FEATURES if f in decide_on]
    return [Rule(f, level, below) for level in (FAULT, SUSPECT) for f in chosen
            for below in ((False, True) if f in BASELINE_FEATURES else (False,))]


def centred(window: np.ndarray) -> tuple[int, np.ndarray]:
    """(mean, d): a window's integer mean (floor) and the window minus it, clamped to int16."""
    x = window.astype(np.int64)
    mean = int(x.sum()) >> (len(x).bit_length() - 1)
    return mean, np.clip(x - mean, -32768, 32767)


def window_features(window: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The features of one filtered int16 window and its raw samples, as int64."""
    log2 = len(window).bit_length() - 1
    mean, d = centred(window)
    squares = d * d
    rms = isqrt((int((squares >> 9).sum()) << (9 - log2)) + (int((squares & 511).sum()) >> log2))
    magnitude = np.abs(d)
    peak = int(magnitude.max())
    crest = kurtosis = periodicity = 0
    if rms:
        crest = (peak << 8) // rms
        u = np.minimum((magnitude << 4) // rms, KURTOSIS_CLAMP)
        kurtosis = int(((u**4) >> 8).sum()) >> log2
        periodicity = envelope_periodicity(u - (int(u.sum()) >> log2))
    negative = d < 0
    zcr = int(np.count_nonzero(negative[1:] != negative[:-1]))
    return np.array([mean, rms, peak, crest, kurtosis, zcr, periodicity, *turn_features(raw)], np.int64)


def turn_samples(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """(q, bits): the raw window minus its mean, clamped to int16, its peak (of `bits` bits) scaled to TURN_PEAK_BITS bits."""
    _, d = centred(raw)
    bits = int(np.abs(d).max()).bit_length()
    return (d >> (bits - TURN_PEAK_BITS) if bits > TURN_PEAK_BITS else d << (TURN_PEAK_BITS - bits)), bits


def turn_depths(q: np.ndarray) -> list[int]:
    """k(lag) = -c(lag) / (W - lag), truncated towards 0, for each lag of TURN_LAGS."""
    c = np.correlate(q, q, "full")[len(q) - 1 + TURN_LAGS[0] : len(q) + TURN_LAGS[-1]]  # exact: int64
    overlap = len(q) - np.array(TURN_LAGS)
    return [int(k) for k in np.where(c < 0, (-c) // overlap, -(c // overlap))]


def turn_features(raw: np.ndarray) -> tuple[int, int]:
    """(once_per_turn, unbalance) of a raw window (module docstring)."""
    q, bits = turn_samples(raw)
    energy = int((q * q).sum())
    if energy == 0:
        return 0, 0
    depths = turn_depths(q)
    deepest = max(0, max(depths[: len(PERIOD_LAGS)])) << (len(q).bit_length() - 1)
    return min(deepest // max((energy - deepest) >> 8, 1), ONCE_PER_TURN_CAP), unbalance(depths, bits)


def once_per_turn(raw: np.ndarray) -> int:
    """The raw window's half-turn anticorrelation over the rest of its energy, Q8 (module docstring)."""
    return turn_features(raw)[0]


def unbalance(depths: list[int], bits: int) -> int:
    """The half-turn lobe's amplitude times the half turn squared (module docstring), from turn_depths and the peak's bits."""
    largest = max(depths[: len(PERIOD_LAGS)])
    if largest <= 0:
        return 0
    start = next(i for i, k in enumerate(depths) if 2 * k >= largest)
    end = start
    while start > 0 and depths[start - 1] > 0:
        start -= 1
    while end < len(depths) - 1 and depths[end + 1] > 0:
        end += 1
    turn = (start + end + 2 * TURN_LAGS[0]) << CROSSING_BITS
    if start > 0:
        turn -= (depths[start] << CROSSING_BITS) // (depths[start] - depths[start - 1])
    if end < len(depths) - 1:
        turn += (depths[end] << CROSSING_BITS) // (depths[end] - depths[end + 1])
    return (isqrt(max(depths[start : end + 1])) * ((turn * turn) >> 10)) >> (18 - bits)


def envelope_periodicity(u: np.ndarray) -> int:
    """max over PERIOD_LAGS of (r(lag) << 8) // r(0) for a mean-removed envelope u (0 when r(0) is 0)."""
    energy = int((u * u).sum())
    if energy == 0:
        return 0
    return max(0, max((int((u[:-lag] * u[lag:]).sum()) << 8) // energy for lag in PERIOD_LAGS))


def decide(features: np.ndarray, rules: list[Rule], thresholds: np.ndarray) -> tuple[int, int, int]:
    """(decision, rule index or NO_RULE, score Q8) for one window's features."""
    decision, fired = NORMAL, NO_RULE
    for position, rule in enumerate(rules):
        if rule.fires(features[rule.index], thresholds[position]):
            decision, fired = rule.level, position
            break
    score = 0
    for position, rule in enumerate(rules):
        if rule.level == SUSPECT:
            value, threshold = max(int(features[rule.index]), 0), int(thresholds[position])
            if rule.below:
                ratio = (min(threshold, BELOW_SCORE_CAP) << 8) // max(value, 1)
            else:
                ratio = (value << 8) // max(threshold, 1)
            score = max(score, min(ratio, SCORE_CAP))
    return decision, fired, score


def windows_of(samples: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Windows (n, window) of a 1-D signal, one every `stride` samples, the first at 0."""
    count = 0 if len(samples) < window else (len(samples) - window) // stride + 1
    starts = np.arange(count) * stride
    return samples[starts[:, None] + np.arange(window)] if count else np.zeros((0, window), samples.dtype)


def features_of_windows(windows: np.ndarray, raws: np.ndarray) -> np.ndarray:
    """Features of filtered windows (n, W) and their raw samples (n, W)."""
    return np.array([window_features(w, r) for w, r in zip(windows, raws)], np.int64).reshape(-1, len(FEATURES))


def with_period_history(features: np.ndarray) -> np.ndarray:
    """Features (n, FEATURES) of one channel's successive windows, periodicity the mean over PERIOD_WINDOWS (docstring)."""
    column = FEATURES.index("periodicity")
    own = np.concatenate([np.zeros(PERIOD_WINDOWS - 1, np.int64), features[:, column]])
    out = features.copy()
    out[:, column] = sum(own[k : k + len(features)] for k in range(PERIOD_WINDOWS)) // PERIOD_WINDOWS
    return out


def stream_features(filtered: np.ndarray, raw: np.ndarray, window: int, stride: int,
                    judged: np.ndarray | None = None) -> np.ndarray:
    """Features of every window of a filtered stream and the raw samples it came from (same length, aligned).

    `judged` (a bool per window, default all) says which windows the board judges: only theirs join the
    periodicity history, as a withheld window's samples are a bad sensor's (the others keep their own figure).
    """
    features = features_of_windows(windows_of(filtered, window, stride), windows_of(raw, window, stride))
    judged = np.ones(len(features), bool) if judged is None else np.asarray(judged, bool)
    features[judged] = with_period_history(features[judged])
    return features

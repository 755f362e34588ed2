"""The application config: sampling, the FIR spec, fallback and fast-path settings.

Validated like a board file: every key required, no unknown key, types checked,
values in range. The built-in default is hostgen/defaults/app.toml.
"""

from __future__ import annotations

import math
from pathlib import Path

from hostgen.config.toml import check_table, read_toml
from hostgen.constants import FEATURES
from hostgen.errors import HostgenError

DEFAULT_APP = Path(__file__).resolve().parent / "app.toml"
FILTER_TYPES = ("lowpass", "highpass", "bandpass")
DESIGNS = ("kaiser", "remez")
INPUT_RECIPES = ("centred_full_scale", "raw_counts", "normalised_second_difference", "band_over_level")  # the engine's (hostgen/model/engine/recipe.py)
MODEL_KINDS = ("auto", "classifier", "reconstruction")
TIER2_MODES = ("auto", "required", "decide", "advisory", "off")
MAX_RATE_HZ = 50_000  # a timer IRQ per sample on a MicroPython board; the BOOT packet has 16 bits for it
MAX_DERIVATION_WINDOWS = 50_000  # synthesized and kept in memory (about 1 KB each) to derive thresholds
MAX_RIPPLE_DB = 6.0  # a passband that may sag by half is not a passband
MAX_STOPBAND_DB = 90.0  # about what Q15 coefficients (15 bits, 6 dB a bit) can reach
RESEND_BYTES = (128, 65536)  # the transmit ring: room for the longest frame (74 bytes), at most a 64 KiB bytearray

SCHEMA: dict[str, dict[str, str]] = {
    "sampling": {
        "rate_hz": "int",
        "channels": "int",
        "full_scale_counts": "int",
        "block_samples": "int",
        "window_samples": "int",
        "stride_samples": "int",
    },
    "filter": {
        "name": "str",
        "type": "str",
        "band_hz": "list[number]",
        "transition_hz": "number",
        "passband_ripple_db": "number",
        "stopband_db": "number",
        "design": "str",
        "taps": "int",
        "max_taps": "int",
    },
    "fallback": {
        "decide_on": "list[str]",
        "suspect_quantile": "number",
        "fault_quantile": "number",
        "margin": "number",
        "level_margin": "number",
        "baseline_margin": "number",
        "seed": "int",
        "normal_windows": "int",
        "heldout_windows": "int",
    },
    "firmware": {
        "node_id": "int",
        "heartbeat_ms": "int",
        "summary_windows": "int",
        "min_confidence": "number",
        "event_log": "int",
    },
    "link": {
        "resend_bytes": "int",
    },
    "model": {
        "tier2": "str",
        "input_recipe": "str",
        "kind": "str",
        "limit_quantile": "number",
        "limit_margin": "number",
    },
    "fastpath": {
        "margin": "number",
        "debounce_blocks": "int",
        "hold_blocks": "int",
        "hysteresis": "number",
        "saturation_samples": "int",
        "stuck_samples": "int",
        "dropout_samples": "int",
    },
}


def load_app(path: str | Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_APP
    raw = read_toml(path, "app config")
    for key in raw:
        if key not in SCHEMA:
            raise HostgenError(f"{path}: unknown table or key '{key}' (allowed: {', '.join(f'[{k}]' for k in SCHEMA)})")
    for section, schema in SCHEMA.items():
        if not isinstance(raw.get(section), dict):
            raise HostgenError(f"{path}: missing table [{section}]")
        check_table(path, section, raw[section], schema)
    _check_values(path, raw)
    raw["path"] = path
    return raw


def _require(path: Path, ok: bool, key: str, value, fix: str) -> None:
    if not ok:
        raise HostgenError(f"{path}: {key} = {value!r}; {fix}")


def _check_values(path: Path, app: dict) -> None:
    sampling, spec, fallback, fast = app["sampling"], app["filter"], app["fallback"], app["fastpath"]
    window = sampling["window_samples"]
    _require(path, 0 < sampling["rate_hz"] <= MAX_RATE_HZ, "sampling.rate_hz", sampling["rate_hz"],
             f"give the sample rate in Hz, 1 to {MAX_RATE_HZ}")
    _require(path, 1 <= sampling["channels"] <= 8, "sampling.channels", sampling["channels"], "use 1 to 8 channels")
    _require(path, 0 < sampling["full_scale_counts"] <= 32767, "sampling.full_scale_counts",
             sampling["full_scale_counts"], "use 1 to 32767 (samples are int16)")
    _require(path, window & (window - 1) == 0 and 16 <= window <= 512, "sampling.window_samples", window,
             "use a power of two from 16 to 512")
    block = sampling["block_samples"]
    _require(path, block & (block - 1) == 0 and 1 <= block <= 64 and window % block == 0, "sampling.block_samples",
             block, "use a power of two up to 64 that divides the window")
    _require(path, 0 < sampling["stride_samples"] <= window and sampling["stride_samples"] % block == 0,
             "sampling.stride_samples", sampling["stride_samples"], "use a multiple of the block, at most the window")
    _require(path, spec["name"].isidentifier() and spec["name"].isascii(), "filter.name", spec["name"],
             "use a C identifier (letters, digits, _)")
    _require(path, spec["type"] in FILTER_TYPES, "filter.type", spec["type"], f"use one of {', '.join(FILTER_TYPES)}")
    _require(path, spec["design"] in DESIGNS, "filter.design", spec["design"], f"use one of {', '.join(DESIGNS)}")
    edges = 2 if spec["type"] == "bandpass" else 1
    _require(path, len(spec["band_hz"]) == edges, "filter.band_hz", spec["band_hz"],
             f"a {spec['type']} filter takes {edges} edge(s)")
    _require(path, spec["taps"] == 0 or (spec["taps"] % 2 == 1 and spec["taps"] >= 3), "filter.taps", spec["taps"],
             "use 0 (choose) or an odd count of at least 3 (linear phase, type I)")
    _require(path, 3 <= spec["max_taps"] <= 255 and spec["max_taps"] % 2 == 1, "filter.max_taps", spec["max_taps"],
             "use an odd count from 3 to 255")
    nyquist = sampling["rate_hz"] / 2
    _require(path, all(math.isfinite(edge) for edge in spec["band_hz"]), "filter.band_hz", spec["band_hz"],
             f"give band edges in Hz between 0 and the Nyquist frequency ({nyquist:g} Hz)")
    _require(path, 0 < spec["transition_hz"] < nyquist, "filter.transition_hz", spec["transition_hz"],
             f"give a width in Hz below the Nyquist frequency ({nyquist:g} Hz)")
    _require(path, 0 < spec["passband_ripple_db"] <= MAX_RIPPLE_DB, "filter.passband_ripple_db", spec["passband_ripple_db"],
             f"use more than 0 and at most {MAX_RIPPLE_DB:g} dB")
    _require(path, 0 < spec["stopband_db"] <= MAX_STOPBAND_DB, "filter.stopband_db", spec["stopband_db"],
             f"use more than 0 and at most {MAX_STOPBAND_DB:g} dB (what Q15 coefficients can reach)")
    unknown = [f for f in fallback["decide_on"] if f not in FEATURES]
    _require(path, not unknown, "fallback.decide_on", fallback["decide_on"], f"features are {', '.join(FEATURES)}")
    _require(path, 0.5 <= fallback["suspect_quantile"] < fallback["fault_quantile"] < 1.0, "fallback quantiles",
             (fallback["suspect_quantile"], fallback["fault_quantile"]), "need 0.5 <= suspect < fault < 1")
    _require(path, 0 <= fallback["margin"] <= 5, "fallback.margin", fallback["margin"], "use 0 to 5")
    _require(path, 0 <= fallback["level_margin"] <= 5, "fallback.level_margin", fallback["level_margin"], "use 0 to 5")
    _require(path, 0 <= fallback["baseline_margin"] < 1, "fallback.baseline_margin", fallback["baseline_margin"],
             "use 0 to 0.99 (a lower threshold is the normal low quantile * (1 - margin))")
    for key in ("normal_windows", "heldout_windows"):
        _require(path, 100 <= fallback[key] <= MAX_DERIVATION_WINDOWS, f"fallback.{key}", fallback[key],
                 f"use 100 to {MAX_DERIVATION_WINDOWS} (each is synthesized and kept in memory)")
    _require(path, 0 <= fast["margin"] <= 10, "fastpath.margin", fast["margin"], "use 0 to 10")
    _require(path, 0 < fast["hysteresis"] < 1, "fastpath.hysteresis", fast["hysteresis"], "use a share in (0, 1)")
    for key in ("debounce_blocks", "hold_blocks", "saturation_samples", "stuck_samples", "dropout_samples"):
        _require(path, 1 <= fast[key] <= 10_000, f"fastpath.{key}", fast[key], "use 1 to 10000")
    model = app["model"]
    _require(path, model["tier2"] in TIER2_MODES, "model.tier2", model["tier2"], f"use one of {', '.join(TIER2_MODES)}")
    _require(path, model["input_recipe"] in INPUT_RECIPES, "model.input_recipe", model["input_recipe"],
             f"use one of {', '.join(INPUT_RECIPES)}")
    _require(path, model["kind"] in MODEL_KINDS, "model.kind", model["kind"], f"use one of {', '.join(MODEL_KINDS)}")
    _require(path, 0.5 <= model["limit_quantile"] < 1, "model.limit_quantile", model["limit_quantile"], "use a share in [0.5, 1)")
    _require(path, 0 <= model["limit_margin"] <= 5, "model.limit_margin", model["limit_margin"], "use 0 to 5")
    _require(path, fast["dropout_samples"] < fast["stuck_samples"], "fastpath.dropout_samples", fast["dropout_samples"],
             f"use fewer repeats than fastpath.stuck_samples ({fast['stuck_samples']}): a dropout is a short stuck run")
    firmware = app["firmware"]
    _require(path, 0 <= firmware["node_id"] <= 65535, "firmware.node_id", firmware["node_id"], "use 0 to 65535")
    _require(path, 100 <= firmware["heartbeat_ms"] <= 3_600_000, "firmware.heartbeat_ms", firmware["heartbeat_ms"],
             "use 100 ms to 1 hour")
    _require(path, 1 <= firmware["summary_windows"] <= 10_000, "firmware.summary_windows", firmware["summary_windows"],
             "use 1 to 10000")
    _require(path, 0 < firmware["min_confidence"] <= 1, "firmware.min_confidence", firmware["min_confidence"],
             "use a probability in (0, 1]")
    _require(path, 4 <= firmware["event_log"] <= 256, "firmware.event_log", firmware["event_log"], "use 4 to 256")
    ring = app["link"]["resend_bytes"]
    _require(path, ring & (ring - 1) == 0 and RESEND_BYTES[0] <= ring <= RESEND_BYTES[1], "link.resend_bytes", ring,
             f"use a power of two from {RESEND_BYTES[0]} to {RESEND_BYTES[1]}")

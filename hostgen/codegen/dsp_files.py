"""A build's tier-1 files: the FIR and the fallback in C and MicroPython, the firmware config, the response plot."""

from __future__ import annotations

import json

from hostgen import __version__, constants
from hostgen.codegen.families import family_of
from hostgen.codegen.render import render_templates
from hostgen.codegen.tier2_files import NO_TIER2, Tier2
from hostgen.dsp import fastpath, features, fir
from hostgen.dsp.features import FEATURES, rules_for
from hostgen.dsp.plan import DspPlan, build_config, config_digest
from hostgen.model.tier2 import min_confidence_q8
from hostgen.util.cache import cached_bytes, code_key

COEFFICIENTS_PER_ROW = 10


def _rows(values, per_row: int) -> list[str]:
    text = [f"{int(v)}," for v in values]
    return [" ".join(text[i : i + per_row]) for i in range(0, len(text), per_row)]


def _response_png(design: fir.FirDesign) -> bytes:
    """The filter's response plot, drawn only for a design (or plotting code) not drawn before: it costs seconds of matplotlib."""
    shown = {**design.__dict__, "float_taps": design.float_taps.tolist(), "coeffs": design.coeffs.tolist()}
    key = code_key(fir, json.dumps(shown, sort_keys=True))
    return cached_bytes("report", key, ".png", lambda: fir.response_plot(design)).read_bytes()


def render_dsp_files(plan: DspPlan, command: str, tier2: Tier2 = NO_TIER2) -> dict[str, bytes]:
    design, window = plan.design, plan.app["sampling"]["window_samples"]
    name = design.name
    config = build_config(plan)
    io = plan.board["io"]
    context = {
        "fir": design,
        "name": name,
        "NAME": name.upper(),
        "coefficient_rows": _rows(design.coeffs, COEFFICIENTS_PER_ROW),
        "calibration": plan.calibration,
        "rules": rules_for(plan.app["fallback"]["decide_on"]),
        "features": FEATURES,
        "period_lags": list(features.PERIOD_LAGS),
        "period_windows": features.PERIOD_WINDOWS,
        "turn_peak_bits": features.TURN_PEAK_BITS,
        "once_per_turn_cap": features.ONCE_PER_TURN_CAP,
        "turn_lags": list(features.TURN_LAGS),
        "crossing_bits": features.CROSSING_BITS,
        "below_score_cap": features.BELOW_SCORE_CAP,
        "constants": constants,
        "window": window,
        "log2_window": window.bit_length() - 1,
        "board": plan.board,
        "family": family_of(plan.board),
        "firmware_version": tuple(int(part) for part in __version__.split(".")),
        "app": plan.app,
        "sampling": plan.app["sampling"],
        "fast": config["fastpath"],
        "digest": config_digest(config),
        "hysteresis_permille": fastpath.hysteresis_permille(plan.app["fastpath"]["hysteresis"]),
        "min_confidence_q8": min_confidence_q8(plan.app),
        "io": io,
        "adc_pins": io["adc_pins"][: plan.app["sampling"]["channels"]],
        "pin_or_none": lambda value, none: "None" if value == none else f'"{value}"',
        "tier2": tier2,
        "model_limit": tier2.figures.get("limit", 1),
    }
    templates = {
        f"fir_{name}.h": "fir.h.j2",
        f"fir_{name}.c": "fir.c.j2",
        f"fir_{name}.py": "fir.py.j2",
        f"fir_{name}_plain.py": "fir_plain.py.j2",
        "fallback.h": "fallback.h.j2",
        "fallback.c": "fallback.c.j2",
        "fallback.py": "fallback.py.j2",
        "faultline_config.py": "faultline_config.py.j2",
    }
    files = render_templates({output: f"codegen/{template}" for output, template in templates.items()}, plan.inputs, command, context)
    files[f"fir_{name}_response.png"] = _response_png(design)
    files["config.json"] = (json.dumps(config, indent=2) + "\n").encode()
    return files

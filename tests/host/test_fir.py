"""FIR design from a spec: achieved response from the quantized taps, refusals, fixed-point properties."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from helpers import app_with, assert_user_error, run_in_process
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from hostgen.config.app import load_app
from hostgen.dsp.fir import FirReference, design_fir, filter_signal
from hostgen.errors import HostgenError

SPECS = {
    "bandpass_kaiser": {},
    "lowpass_kaiser": {"type": '"lowpass"', "band_hz": "[100.0]", "transition_hz": "50.0"},
    "highpass_kaiser": {"type": '"highpass"', "band_hz": "[120.0]", "transition_hz": "60.0"},
    "bandpass_remez": {"design": '"remez"', "taps": "45"},
    "lowpass_exact_taps": {"type": '"lowpass"', "band_hz": "[200.0]", "taps": "61", "stopband_db": "30.0"},
}


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_design_meets_spec_after_quantization(tmp_path, spec):
    app = load_app(app_with(tmp_path, **SPECS[spec]))
    design = design_fir(app)
    wanted = app["filter"]
    assert design.taps % 2 == 1 and design.taps <= wanted["max_taps"]
    if wanted["taps"]:
        assert design.taps == wanted["taps"]
    assert np.array_equal(design.coeffs, design.coeffs[::-1]), "quantized taps must stay symmetric"
    # independent check of the achieved response from the Q15 taps
    freqs, response = signal.freqz(design.coeffs / 32768.0, worN=16384, fs=app["sampling"]["rate_hz"])
    gain_db = 20 * np.log10(np.maximum(np.abs(response), 1e-12))
    for low, high in design.stopband:
        assert gain_db[(freqs >= low) & (freqs <= high)].max() <= -wanted["stopband_db"] + 0.05
    for low, high in design.passband:
        assert np.abs(gain_db[(freqs >= low) & (freqs <= high)]).max() <= wanted["passband_ripple_db"] + 0.05
    inside = (freqs > design.passband[0][0] + 1) & (freqs < design.passband[0][1] - 1)
    _, delay = signal.group_delay((design.coeffs.astype(float), [1.0]), w=freqs[inside], fs=app["sampling"]["rate_hz"])
    assert np.allclose(delay, (design.taps - 1) / 2, atol=1e-6)


def test_kaiser_uses_fewest_taps(tmp_path):
    design = design_fir(load_app())
    fewer = load_app(app_with(tmp_path, taps=str(design.taps - 2)))
    with pytest.raises(HostgenError, match="cannot meet its spec"):
        design_fir(fewer)


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"stopband_db": "90.0", "max_taps": "31"}, "cannot meet its spec with at most 31 taps"),
        ({"band_hz": "[150.0, 520.0]"}, "outside (0, 500) Hz"),
        ({"band_hz": "[150.0, 470.0]"}, "puts a stopband outside"),
        ({"taps": "40"}, "odd count"),
        ({"type": '"notch"'}, "lowpass, highpass, bandpass"),
        ({"window_samples": "300"}, "power of two"),
    ],
)
def test_bad_filter_specs_are_refused_before_anything_is_written(tmp_path, reference_tflite, changes, fragment):
    out = tmp_path / "out"
    result = run_in_process("gen", "--board", "stm32f4", "--model", reference_tflite, "--app", app_with(tmp_path, **changes), "--out", out)
    assert_user_error(result, fragment)
    assert not out.exists()


def test_response_plot_is_written(gen_build, reference_tflite):
    out = gen_build("esp32", "--model", reference_tflite)
    png = (out / "fir_vib_response.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_generated_c_compiles_clean_on_host_and_arm(tmp_path, gen_build, reference_tflite):
    out = gen_build("stm32f4", "--model", reference_tflite)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wno-sign-conversion", "-c", "-I", str(out)]
    for compiler, arch in (("gcc", []), ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard"])):
        for source in ("fir_vib.c", "fallback.c"):
            result = subprocess.run([compiler, *arch, *flags, str(out / source), "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
            assert result.returncode == 0, f"{compiler} {source}: {result.stderr}"
    assert "float" not in (out / "fir_vib.c").read_text().replace("no floats", "")
    assert "malloc" not in (out / "fir_vib.c").read_text() + (out / "fallback.c").read_text()


COEFFS = design_fir(load_app()).coeffs
int16s = st.integers(-32768, 32767)


@settings(max_examples=300, deadline=None)
@given(st.lists(int16s, min_size=len(COEFFS), max_size=len(COEFFS)))
def test_split_accumulator_is_exact_and_32_bit_safe(window):
    """The MicroPython kernel's two partial sums equal the exact sum and never leave 32 bits."""
    products = [int(h) * x for h, x in zip(COEFFS, window)]
    high = sum(p >> 16 for p in products)
    low = sum(p & 0xFFFF for p in products)
    assert -(2**31) < high < 2**31 and 0 <= low < 2**31
    assert 2 * high + ((low + 0x4000) >> 15) == (sum(products) + 0x4000) >> 15


@settings(max_examples=100, deadline=None)
@given(st.lists(int16s, min_size=1, max_size=600), st.lists(st.integers(1, 97), min_size=1, max_size=40))
def test_state_carries_over_block_boundaries(samples, cuts):
    x = np.array(samples, np.int16)
    whole = filter_signal(COEFFS, x)
    state, parts, start = FirReference(COEFFS), [], 0
    for cut in cuts * (len(x) // sum(cuts) + 1):
        if start >= len(x):
            break
        parts.append(state.process(x[start : start + cut]))
        start += cut
    assert np.array_equal(np.concatenate(parts), whole)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-8000, 8000), min_size=50, max_size=300), st.lists(st.integers(-8000, 8000), min_size=300, max_size=300))
def test_linear_within_rounding(a, b):
    """Without saturation, filter(a + b) and filter(a) + filter(b) differ by at most 1 LSB."""
    a = np.array(a, np.int16)
    b = np.array(b[: len(a)], np.int16)
    total = filter_signal(COEFFS, (a + b).astype(np.int16)).astype(int)
    parts = filter_signal(COEFFS, a).astype(int) + filter_signal(COEFFS, b).astype(int)
    assert np.abs(total - parts).max() <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(int16s, min_size=1, max_size=300))
def test_output_saturates_instead_of_wrapping(samples):
    x = np.array(samples, np.int16)
    exact = np.convolve(x.astype(np.int64), COEFFS.astype(np.int64))[: len(x)]
    expected = np.clip((exact + 0x4000) >> 15, -32768, 32767)
    assert np.array_equal(filter_signal(COEFFS, x), expected)

"""The engine's 32-bit proofs.

- Its fixed-point steps (SaturatingRoundingDoublingHighMul in 16-bit pieces, RoundingDivideByPOT)
  equal TFLM's int64 definitions on edge and random operands, as C under -m32 UBSan (no
  intermediate leaves int32) and as the viper macros the MicroPython module is built from.
- The whole C engine built with gcc -m32 -fsanitize=undefined gives byte-identical outputs.
- The same C cross-compiled for a Cortex-M4 runs on an emulated STM32F405 byte-identically,
  and reports its instructions per inference.
"""

from __future__ import annotations

import shutil
import subprocess

import jinja2
import numpy as np
import pytest
from engine_inputs import first_difference, open_engine, parity_sets

from hostgen.board.unix_port import unix_heap_bytes
from hostgen.config.board import load_board
from hostgen.model.engine import cortex_m4
from hostgen.model.engine import fixedpoint as fp
from hostgen.model.engine.generate import ENGINE_TEMPLATES_DIR
from hostgen.model.engine.runners import UBSAN_32_FLAGS
from hostgen.util.tools import micropython_executable

HEAP = unix_heap_bytes(load_board("stm32f4"))
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
EDGES = sorted({INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0, 1, -1, 2, -2}
               | {sign * ((1 << k) + d) for k in (14, 15, 16, 17, 29, 30) for d in (-1, 0, 1) for sign in (1, -1)})
PROOF_C = """
#include <stdio.h>
#include "model_{name}.c"
int main(int argc, char **argv)
{{
    FILE *in = fopen(argv[2], "rb"), *out = fopen(argv[3], "wb");
    (void)argc;
    int32_t v[2], r;
    while (fread(v, sizeof v, 1, in) == 1) {{
        r = argv[1][0] == 's' ? srdhm(v[0], v[1]) : rdbpot(v[0], v[1]);
        fwrite(&r, sizeof r, 1, out);
    }}
    return fclose(out);
}}
"""
PROOF_VIPER = """{% import "viper_fixedpoint.j2" as fx %}
import array
import micropython
import sys


@micropython.viper
def apply(values, out, n: int, multiply: int):
    {{ fx.limits()|indent(4) }}
    v = ptr16(values)
    o = ptr16(out)
    for i in range(n):
        a = (((int(v[4 * i + 1]) ^ 0x8000) - 0x8000) << 16) | int(v[4 * i])
        b = (((int(v[4 * i + 3]) ^ 0x8000) - 0x8000) << 16) | int(v[4 * i + 2])
        if multiply:
            {{ fx.srdhm("r", "a", "b")|indent(12) }}
        else:
            {{ fx.rdbpot("r", "a", "b")|indent(12) }}
        o[2 * i] = r & 0xFFFF
        o[2 * i + 1] = (r >> 16) & 0xFFFF


values = array.array("H", bytes(4 * 4096))
out = array.array("H", bytes(2 * 4096))
with open(sys.argv[2], "rb") as source, open(sys.argv[3], "wb") as target:
    while True:
        got = source.readinto(values) // 8
        if not got:
            break
        apply(values, out, got, sys.argv[1] == "srdhm")
        target.write(memoryview(out)[: 2 * got])
"""


def _operands(seed: int = 0):
    rng = np.random.default_rng(seed)
    edges = np.array(EDGES, np.int64)
    grid = np.stack(np.meshgrid(edges, edges), -1).reshape(-1, 2)
    random = rng.integers(INT32_MIN, INT32_MAX + 1, size=(400_000, 2))
    multipliers = np.stack([rng.integers(INT32_MIN, INT32_MAX + 1, 200_000), rng.integers(1 << 30, 1 << 31, 200_000)], -1)
    products = np.concatenate([grid, random, multipliers])
    xs = np.concatenate([edges, rng.integers(INT32_MIN, INT32_MAX + 1, 20_000)])
    shifts = np.stack(np.meshgrid(xs, np.arange(32)), -1).reshape(-1, 2)
    return products, shifts


def _expected(kind: str, pairs: np.ndarray) -> np.ndarray:
    if kind == "srdhm":
        return fp.srdhm(pairs[:, 0], pairs[:, 1]).astype(np.int32)
    return fp.rounding_divide_by_pot(pairs[:, 0], pairs[:, 1]).astype(np.int32)


@pytest.fixture(scope="module")
def reference_engine(reference_tflite):
    with open_engine(reference_tflite, HEAP) as runner:
        yield runner


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc gcc-multilib)")
def test_fixed_point_pieces_equal_int64_in_c_under_m32_ubsan(reference_engine, tmp_path):
    runner = reference_engine
    source = tmp_path / "proof.c"
    source.write_text(PROOF_C.format(name=runner.compiled.name))
    binary = tmp_path / "proof"
    result = subprocess.run(["gcc", *UBSAN_32_FLAGS, "-Wno-unused-function", "-I", str(runner.workdir), str(source), "-o", str(binary)],
                            capture_output=True, text=True)
    if "multilib" in result.stderr or "gnu/stubs-32.h" in result.stderr:
        pytest.skip("gcc -m32 needs Debian gcc-multilib: apt-get install gcc-multilib")
    assert result.returncode == 0, result.stderr
    for kind, pairs in zip(("srdhm", "rdbpot"), _operands()):
        pairs.astype(np.int32).tofile(tmp_path / "in.bin")
        run = subprocess.run([str(binary), kind, str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True, text=True)
        assert run.returncode == 0, f"{kind}: {run.stderr}"  # -fno-sanitize-recover: any signed overflow or bad shift exits
        _assert_equal(kind, pairs, np.fromfile(tmp_path / "out.bin", np.int32))


def test_fixed_point_pieces_equal_int64_in_viper(tmp_path):
    script = tmp_path / "proof_viper.py"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ENGINE_TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    script.write_text(env.from_string(PROOF_VIPER).render())
    for kind, pairs in zip(("srdhm", "rdbpot"), _operands(seed=1)):
        pairs = pairs[:: 4 if kind == "srdhm" else 1]
        pairs.astype("<i4").tofile(tmp_path / "in.bin")
        result = subprocess.run([micropython_executable(), str(script), kind, str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        _assert_equal(kind, pairs, np.fromfile(tmp_path / "out.bin", "<i4"))


def _assert_equal(kind: str, pairs: np.ndarray, got: np.ndarray) -> None:
    expected = _expected(kind, pairs)
    wrong = np.flatnonzero(expected != got)
    assert len(wrong) == 0, f"{kind}({pairs[wrong[0], 0]}, {pairs[wrong[0], 1]}): expected {expected[wrong[0]]}, got {got[wrong[0]]} ({len(wrong)} wrong)"
    assert len(got) == len(pairs)


def _ubsan_m32_identical(runner) -> None:
    for set_name, x in parity_sets(runner.compiled, random=3000, extremes=1000, real=1000).items():
        difference = first_difference(runner.run("ref", x), runner.run("c", x, c_flags=UBSAN_32_FLAGS))
        assert difference is None, f"{runner.compiled.name} gcc -m32 UBSan on {set_name}: {difference}"


def test_whole_c_engine_under_m32_ubsan(reference_engine):
    _ubsan_m32_identical(reference_engine)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv2d_depthwise", "conv2d_same_pooled", "residual_logistic", "dense_per_tensor",
                                  "autoencoder_requantized"])
def test_zoo_c_engine_under_m32_ubsan(zoo, name):
    with open_engine(zoo[name], HEAP) as runner:
        _ubsan_m32_identical(runner)


def _cortex_m4_identical(runner, count: int) -> float:
    missing = cortex_m4.tools_missing()
    if missing:
        pytest.skip(missing)
    sets = parity_sets(runner.compiled, random=count // 2, extremes=count // 4, real=count // 4)
    x = np.concatenate(list(sets.values()))
    result = cortex_m4.run(runner.workdir, runner.sources, x, runner.compiled.graph.output_tensor.shape)
    difference = first_difference(runner.run("tflm", x), result.outputs)
    assert difference is None, f"{runner.compiled.name} on the emulated Cortex-M4: {difference}"
    assert result.instructions_per_inference > runner.compiled.graph.macs  # at least one instruction per multiply-accumulate
    return result.instructions_per_inference


def test_cortex_m4_byte_identical(reference_engine):
    instructions = _cortex_m4_identical(reference_engine, 1000)
    print(f"reference model: {instructions:,.0f} Cortex-M4 instructions per inference")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv2d_depthwise", "residual_logistic", "autoencoder_requantized"])
def test_zoo_cortex_m4_byte_identical(zoo, name):
    with open_engine(zoo[name], HEAP) as runner:
        _cortex_m4_identical(runner, 200)

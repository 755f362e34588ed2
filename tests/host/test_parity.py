"""Reference, C and MicroPython agree bit for bit, per board; and the check can fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import every_board_one_in_the_fast_tier, run_hostgen

from hostgen.config.board import load_board
from hostgen.dsp.parity import run_parity, stream_vectors
from hostgen.dsp.runners import DspRunner, open_runner

PARITY_RUN_ON: dict[tuple, str] = {}


def dsp_build_and_heap(board: str) -> tuple:
    """What parity depends on: the generated filter and fallback, and the MicroPython heap they run in."""
    plan = open_runner(load_board(board), None, "test").plan
    return (tuple(plan.design.coeffs.tolist()), json.dumps(plan.calibration.thresholds), tuple(plan.calibration.rules),
            json.dumps(plan.app["sampling"], sort_keys=True), load_board(board)["micropython"]["heap_bytes"])


@pytest.mark.parametrize("board", every_board_one_in_the_fast_tier())
def test_parity_on_every_board(board):
    key = dsp_build_and_heap(board)
    if key in PARITY_RUN_ON:
        pytest.skip(f"{board} has the same DSP build and MicroPython heap as {PARITY_RUN_ON[key]}: parity ran there")
    PARITY_RUN_ON[key] = board
    result = run_hostgen("parity", "--board", board, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mismatches"] == 0
    assert report["samples"] >= 100_000 and report["windows"] >= 10_000
    assert report["micropython_heap_bytes"] == load_board(board)["micropython"]["heap_bytes"]
    assert report["streams"]["sign_matched"]["saturated_outputs"] > 0, "the accumulator's worst case must be reached"
    assert all(entry["block_independent"] for entry in report["streams"].values())
    decisions = report["fallback"]["channel 0"]["decisions"]
    assert min(decisions.values()) > 0, "every decision must be exercised"


def test_vectors_reach_full_scale_and_exceed_32_bits():
    coeffs = open_runner(load_board("esp32"), None, "test").plan.design.coeffs
    vectors = stream_vectors(4000, coeffs, seed=1)
    assert vectors["full_scale"].max() == 32767 and vectors["full_scale"].min() == -32768
    worst = np.convolve(vectors["sign_matched"].astype(np.int64), coeffs.astype(np.int64)).max()
    assert worst > 2**31, "some accumulator value must not fit in 32 bits"


def test_a_broken_implementation_is_caught():
    """An int32 accumulator in the C (a plausible mistake) must show up as mismatches."""
    healthy = open_runner(load_board("stm32f4"), None, "test")
    files = {p.name: p.read_bytes() for p in healthy.workdir.iterdir() if p.is_file()}
    harness = files.pop("dsp_harness.c")
    files["fir_vib.c"] = files["fir_vib.c"].replace(b"int64_t acc", b"int32_t acc")
    broken = DspRunner(files, healthy.plan, healthy.heap_bytes, harness)
    try:
        report = run_parity(broken, 20_000, 200)
    finally:
        broken.close()
        healthy.close()
    assert report["mismatches"] > 0
    assert report["streams"]["sign_matched"]["pairs"]["ref-c"]["mismatches"] > 0
    assert report["streams"]["sign_matched"]["pairs"]["ref-micropython"]["mismatches"] == 0


def test_parity_text_report():
    result = run_hostgen("parity", "--board", "nucleo_f401re", "--n", "20000", "--windows", "500")
    assert result.returncode == 0 and "no mismatches" in result.stdout


def test_bench_prints_the_costs_as_ratios():
    result = run_hostgen("bench", "--board", "stm32f4", "--samples", "20000", "--loop-blocks", "2000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    figures = {line.split()[0]: float(line.split()[1]) for line in lines[1:4]}
    assert set(figures) == {"C", "viper", "plain"} and all(value > 0 for value in figures.values())
    assert "x C" in result.stdout and "p99/p50" in result.stdout and "over 2000 blocks" in result.stdout
    assert "us/window" in result.stdout and "per block" in result.stdout

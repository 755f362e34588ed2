"""The arena figure against an independent probe of the real TFLM runtime, and the budget check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import assert_runs_without_tensorflow, assert_user_error, run_hostgen

from hostgen.config.board import load_board

# Written apart from hostgen's probe on purpose: one fresh process per size.
INDEPENDENT_PROBE = """
import sys
import numpy as np
from tflite_micro import runtime
interpreter = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=int(sys.argv[2]))
details = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
interpreter.invoke()
"""


def runs_with_arena(model, size: int) -> bool:
    return subprocess.run([sys.executable, "-c", INDEPENDENT_PROBE, str(model), str(size)], capture_output=True).returncode == 0


def size_json(board: str, model, *extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    result = run_hostgen("size", "--board", board, "--model", model, "--json", *extra)
    return json.loads(result.stdout), result


@pytest.fixture(params=["reference", "dense_per_channel", "dense_per_tensor", "conv2d_depthwise"])
def model_path(request, zoo, reference_tflite):
    return reference_tflite if request.param == "reference" else zoo[request.param]


def test_arena_is_the_smallest_that_works(model_path):
    figures, result = size_json("esp32s3", model_path)
    assert result.returncode == 0, result.stderr
    probed = figures["arena_probed_bytes"]
    assert runs_with_arena(model_path, probed)
    assert not runs_with_arena(model_path, probed - 1)
    assert figures["arena_bytes"] % 16 == 0 and figures["arena_bytes"] - probed in range(16, 32)
    assert "64-bit host" in figures["arena_note"] and "upper bound" in figures["arena_note"]


def test_runtime_report_undercounts_per_channel_dense(zoo):
    """The case hostgen does not trust the runtime's total for: it reports less than it needs."""
    figures, _ = size_json("esp32s3", zoo["dense_per_channel"])
    assert figures["arena_reported_bytes"] < figures["arena_probed_bytes"]
    assert not runs_with_arena(zoo["dense_per_channel"], figures["arena_reported_bytes"])


def test_budget_is_the_fraction_of_the_stated_figure(reference_tflite):
    figures, result = size_json("stm32f4", reference_tflite)
    board = load_board("stm32f4")
    assert result.returncode == 0
    assert figures["sram_bytes"] == board.budget_sram_bytes
    assert figures["budget_bytes"] == int(0.70 * figures["sram_bytes"])
    assert figures["fits"] is True and figures["headroom_bytes"] == figures["budget_bytes"] - figures["arena_bytes"]
    assert figures["model_bytes"] == reference_tflite.stat().st_size


def test_over_budget_prints_figures_then_fails(zoo):
    figures, result = size_json("stm32f4", zoo["wide_activations"])
    assert figures["fits"] is False
    over = figures["arena_bytes"] - figures["budget_bytes"]
    assert_user_error(result, f"{over:,} bytes over", "smaller model", "per-tensor", "more SRAM")


def test_fraction_is_configurable(reference_tflite):
    figures, result = size_json("stm32f4", reference_tflite, "--fraction", "0.05")
    assert figures["budget_bytes"] == int(0.05 * figures["sram_bytes"]) and figures["fits"] is False
    assert_user_error(result, "over stm32f4's budget")
    assert_user_error(run_hostgen("size", "--board", "stm32f4", "--model", reference_tflite, "--fraction", "1.7"), "--fraction 1.7")


def test_model_too_big_for_flash(zoo):
    figures, result = size_json("stm32f4", zoo["large_weights"])
    assert figures["fits_flash"] is False
    assert_user_error(result, "model flash region")


def test_size_does_not_import_tensorflow(reference_tflite):
    assert_runs_without_tensorflow("size", "--board", "stm32f4", "--model", reference_tflite)

"""The generated DSP modules on the real MicroPython VM: no allocation per call, at the board's heap."""

from __future__ import annotations

import subprocess

import pytest

from hostgen.config.board import load_board
from hostgen.dsp.runners import open_runner
from hostgen.util.tools import micropython_executable

SCRIPT = """
import array, gc, math, sys
sys.path.insert(0, {workdir!r})
import fir_vib, fir_vib_plain, fallback
stage = fir_vib.Filter()
source = array.array("h", (((i * 7919) % 65536) - 32768 for i in range(fallback.WINDOW)))
slow_turn = array.array("h", (int(20000 * math.sin(math.pi * i / 50)) for i in range(fallback.WINDOW)))  # unbalance reads lags past 63
target = array.array("h", bytes(2 * fallback.WINDOW))
thresholds = fallback.default_thresholds(0)
result = fallback.new_result()
history = fallback.new_period_history()
step = {step}
def allocated(rounds):  # a function's locals, unlike new globals, never grow a dict while measured
    before = gc.mem_alloc()
    for _ in range(rounds):
        step(source, target, fallback.WINDOW)
        fallback.evaluate(target, source, thresholds, result, history)
        fallback.evaluate(target, slow_turn, thresholds, result, history)
    return gc.mem_alloc() - before
allocated(1)
gc.collect()
gc.disable()
print(allocated({rounds}), result[fallback.UNBALANCE])
"""


@pytest.mark.parametrize("step, rounds", [
    ("stage.process", 1000),
    ("lambda source, target, n: fir_vib_plain.process(stage, source, target, n)", 100),
])
@pytest.mark.parametrize("board", ["stm32f4", "nucleo_f401re"])
def test_filter_and_fallback_allocate_nothing(board, step, rounds):
    board = load_board(board)
    with open_runner(board, None, "test") as runner:
        script = SCRIPT.format(workdir=str(runner.workdir), step=step, rounds=rounds)
        heap = f"heapsize={board['micropython']['heap_bytes']}"
        result = subprocess.run([micropython_executable(), "-X", heap, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    allocated, unbalance = map(int, result.stdout.split())
    assert allocated == 0, f"{allocated} bytes allocated over {rounds} windows"
    assert unbalance > 0

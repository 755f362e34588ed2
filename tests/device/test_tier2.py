"""Tier 2 on the real MicroPython VM: the compiled reference model judges every window, as the
host engine does, to the window; the fallback decides what the model is unsure of; the fast path
keeps its latency and the loop allocates nothing while the model runs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import app_with
from test_pipeline import reference

from hostgen.board.image import build_firmware
from hostgen.board.replay import FirmwareWorkspace, replay
from hostgen.codegen.build import BuildRequest, generate
from hostgen.constants import NORMAL
from hostgen.model.engine.generate import compile_model
from hostgen.model.tflite import load_model
from hostgen.model.tier2 import judge

MODEL_WINDOWS_ALLOCATION = 1000


def reference_build(tmp_path_factory, reference_tflite, mode: str):
    root = tmp_path_factory.mktemp(f"tier2_{mode}")
    app = app_with(root, tier2=f'"{mode}"')
    generate(BuildRequest(board="stm32f4", model=str(reference_tflite), out=str(root / "stm32f4"), app=str(app)), lambda _: None)
    return root / "stm32f4"


@pytest.fixture(scope="module")
def tier2_build(tmp_path_factory, reference_tflite):
    """The reference model deciding the windows it is sure of, whatever its report says."""
    return reference_build(tmp_path_factory, reference_tflite, "decide")


@pytest.fixture(scope="module")
def compiled(reference_tflite, plan):
    return compile_model(load_model(reference_tflite), "faultline", "test", plan.app["model"]["input_recipe"])


def expected_windows(plan, compiled, recording, decides=True):
    """start -> (decision, tier, confidence, fallback rule) for every window, as the board must decide it."""
    _, starts, _, decided, _ = reference(plan, recording)
    window = plan.app["sampling"]["window_samples"]
    raw = np.stack([recording[s : s + window, 0] for s in starts])
    judged = judge(compiled, raw, plan.app, 1, decides)
    out = {}
    for start, (fallback_decision, rule, _), verdict in zip(starts, decided, judged):
        decision = fallback_decision if verdict.decision is None else verdict.decision
        out[start] = (decision, verdict.tier, verdict.confidence_q8, rule if verdict.decision is None else -1)
    return out


@pytest.mark.parametrize("name", ["normal", "bearing_fault", "impact"])
def test_the_board_decides_every_window_as_the_host_engine(board, scenarios, plan, compiled, tier2_build, name):
    recording, _ = scenarios[name]
    result = replay(board, recording, modules=build_firmware(tier2_build))
    assert result.bad_frames == 0
    expected = expected_windows(plan, compiled, recording)
    flagged = {start: e for start, e in expected.items() if e[0] != NORMAL}
    windows = {p.fields["start_sample"]: p.fields for p in result.packets if p.kind == "WINDOW"}
    assert sorted(windows) == sorted(flagged)
    for start, (decision, tier, confidence, rule) in flagged.items():
        packet = windows[start]
        assert (packet["decision"], packet["tier"], packet["confidence_q8"], packet["rule"]) == (decision, tier, confidence, rule)
    summarised = sum(p.fields["windows"] for p in result.packets if p.kind == "SUMMARY")
    assert summarised + len(windows) == len(expected)
    last = [p.fields for p in result.packets if p.kind == "HEARTBEAT"][-1]
    assert last["model_late"] == 0 and last["tier2_errors"] == 0
    assert last["model_decisions"] + last["model_unsure"] == len(expected)


def test_an_advisory_model_leaves_every_decision_to_the_fallback(board, scenarios, plan, compiled, tmp_path_factory,
                                                              reference_tflite):
    """Each window the fallback flags carries the advisory tier and the model's fault score; the model decides none."""
    recording, _ = scenarios["bearing_fault"]
    result = replay(board, recording, modules=build_firmware(reference_build(tmp_path_factory, reference_tflite, "advisory")))
    expected = expected_windows(plan, compiled, recording, decides=False)
    flagged = {start: e for start, e in expected.items() if e[0] != NORMAL}
    windows = {p.fields["start_sample"]: p.fields for p in result.packets if p.kind == "WINDOW"}
    assert flagged and sorted(windows) == sorted(flagged)
    for start, (decision, tier, confidence, rule) in flagged.items():
        packet = windows[start]
        assert tier == 5 and (packet["decision"], packet["tier"], packet["confidence_q8"], packet["rule"]) == (decision, tier, confidence, rule)
    assert next(p for p in result.packets if p.kind == "BOOT").fields["tier2"] == 2
    assert [p.fields for p in result.packets if p.kind == "HEARTBEAT"][-1]["model_decisions"] == 0


def test_the_model_finds_the_bearing_fault(board, scenarios, tier2_build):
    recording, facts = scenarios["bearing_fault"]
    result = replay(board, recording, modules=build_firmware(tier2_build))
    after = [p.fields for p in result.packets if p.kind == "WINDOW" and p.fields["start_sample"] >= facts["fault_at"]]
    windows_after = (len(recording) - facts["fault_at"]) // 128 - 1
    assert sum(w["tier"] == 1 and w["decision"] == 2 for w in after) >= 0.8 * windows_after


def test_the_impact_trips_the_fast_path_as_without_a_model(board, scenarios, tier2_build):
    """The fast path's alerts, to the sample, are the same with the model running in the slices between blocks."""
    recording, _ = scenarios["impact"]

    def alerts(result):
        return [(p.fields["sample"], p.fields["rule"], p.fields["raised"]) for p in result.packets if p.kind == "ALERT"]

    with_model = replay(board, recording, modules=build_firmware(tier2_build))
    without = replay(board, recording)
    assert alerts(with_model) == alerts(without) and alerts(with_model)
    last = [p.fields for p in with_model.packets if p.kind == "HEARTBEAT"][-1]
    assert last["overruns"] == 0


STEADY_STATE = """
import gc, faultline
running = faultline.start()
for _ in range(200):
    faultline.service()
gc.collect()
before = gc.mem_alloc()
while faultline.service():
    pass
after = gc.mem_alloc()
print("steady", before, after, running.windows, running.model_decisions + running.model_unsure, running.model_late)
"""


def test_the_loop_allocates_nothing_with_the_model_on(board, tier2_build, tmp_path):
    rng = np.random.default_rng(4)
    from hostgen.data import synthetic as dataset

    samples = (MODEL_WINDOWS_ALLOCATION + 40) * 128
    recording = dataset.synthesize(dataset.random_machine(rng, fault=True), samples, rng)
    scenario = tmp_path / "scenario.i16"
    recording.astype(np.int16).tofile(scenario)
    with FirmwareWorkspace(board, modules=build_firmware(tier2_build)) as workspace:
        result = workspace.run_code(STEADY_STATE, {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "link.bin")})
    assert result.returncode == 0, result.stderr
    line = next(text for text in result.stdout.splitlines() if text.startswith("steady"))
    before, after, windows, judged, late = map(int, line.split()[1:])
    assert windows >= MODEL_WINDOWS_ALLOCATION and judged >= MODEL_WINDOWS_ALLOCATION and late == 0
    assert after == before, f"the loop allocated {after - before} bytes over {windows} windows with the model on"

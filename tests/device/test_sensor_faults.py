"""Sensor faults injected at random moments, replayed on the real firmware: reported as sensor
faults first, never as machine faults, and the firmware equal to the reference to the sample.

The firmware is built for a machine calibrated on its own normal running (as on the floor),
with an app config that states the sensor's own limit, well below int16 full scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from device_support import RATE, machine_run, scenario_machine

from hostgen.board.image import generated_modules
from hostgen.board.packets import ALERT_RULES
from hostgen.board.replay import FirmwareWorkspace, replay
from hostgen.codegen.dsp_files import render_dsp_files
from hostgen.config.app import load_app
from hostgen.dsp.calibration import recording_calibration
from hostgen.dsp.fastpath import MACHINE_RULES, NOISE_LATENCY_BLOCKS, SENSOR_RULES, run_channel_blocks, settle_blocks
from hostgen.dsp.features import NORMAL, decide, rules_for, stream_features
from hostgen.dsp.fir import design_fir, filter_signal
from hostgen.dsp.plan import DspPlan

SENSOR_LIMIT = 12000  # the sensor clips here, as its datasheet says; the app config states it
SEEDS = (101, 202, 303)
KINDS = ("saturated", "stuck", "dropout", "disconnected_rail")


@pytest.fixture(scope="module")
def floor_plan(board, tmp_path_factory):
    """A build calibrated on a minute of the scenario machine's normal running, with the sensor's limit stated."""
    folder = tmp_path_factory.mktemp("floor")
    text = (load_app()["path"]).read_text().replace("full_scale_counts = 32767", f"full_scale_counts = {SENSOR_LIMIT}")
    app_path = folder / "app.toml"
    app_path.write_text(text)
    app = load_app(app_path)
    design = design_fir(app)
    machine, rng = scenario_machine(31)
    normal = folder / "normal.npy"
    np.save(normal, machine_run(machine, 60, rng).astype(np.int16))
    calibration = recording_calibration(app, design, [normal], [])
    plan = DspPlan(board, app, design, calibration, None)
    return plan, generated_modules(render_dsp_files(plan, "test_sensor_faults"))


def inject(kind: str, seed: int) -> tuple[np.ndarray, int]:
    """20 s of the scenario machine with one sensor fault from a random moment; (recording, onset sample)."""
    machine, _ = scenario_machine(31)
    rng = np.random.default_rng(seed)
    x = machine_run(machine, 20, rng)
    onset = int(rng.integers(4 * RATE, 14 * RATE))
    end = onset + int(rng.integers(RATE, 3 * RATE))
    if kind == "saturated":  # the vibration grows past the sensor's range: flat tops at its limit
        x[onset:end] = np.clip(x[onset:end] * 8, -SENSOR_LIMIT - 1, SENSOR_LIMIT)
    elif kind == "stuck":
        x[onset:end] = x[onset]
    elif kind == "dropout":  # readings lost and held, or read as 0, a few at a time
        at = onset
        for _ in range(6):
            length = int(rng.integers(4, 40))
            x[at : at + length] = 0 if rng.random() < 0.5 else x[at - 1]
            at += length + int(rng.integers(50, 400))
    elif kind == "disconnected_rail":  # an open input pulled to a rail
        x[onset:end] = SENSOR_LIMIT if rng.random() < 0.5 else -SENSOR_LIMIT - 1
    elif kind == "disconnected_noise":  # an open AC-coupled input: noise about its bias, nothing of the machine left
        bias = int(x[onset - RATE : onset].mean())
        x[onset:end] = bias + np.round(rng.normal(0.0, 40.0, end - onset)).astype(np.int64)
    return np.clip(x, -32768, 32767).astype(np.int16).reshape(-1, 1), onset


@pytest.mark.parametrize("seed", SEEDS)
def test_an_input_left_reading_noise_is_reported_disconnected_and_raises_no_machine_alarm(board, floor_plan, seed):
    """Its report takes up to NOISE_LATENCY_BLOCKS; the windows ending in that time wait for it and are withheld."""
    plan, modules = floor_plan
    recording, onset = inject("disconnected_noise", seed)
    alerts, windows = replay_against_reference(board, plan, modules, recording)
    first_sensor_report(alerts, "disconnected_noise", onset, NOISE_LATENCY_BLOCKS, plan.app["sampling"]["block_samples"])
    assert not [a for a in alerts if ALERT_RULES[a["rule"]] in MACHINE_RULES and a["raised"]]
    window = plan.app["sampling"]["window_samples"]
    assert not [start for start in windows if start + window > onset], "a window holding the step into the noise was judged"


def reference(plan, recording):
    app, design, calibration = plan.app, plan.design, plan.calibration
    raw = recording[:, 0]
    filtered = filter_signal(design.coeffs, raw)
    run = run_channel_blocks(raw, filtered, design.taps, calibration.limits(0), app)
    block, window, stride = (app["sampling"][k] for k in ("block_samples", "window_samples", "stride_samples"))
    offset = settle_blocks(design.taps, block) * block
    end = len(raw) // block * block
    starts = range(offset, end - window + 1, stride)
    judges = np.array([run.judges((start + window) // block - 1) for start in starts], bool)
    features = stream_features(filtered[offset:end], raw[offset:end], window, stride, judges)
    rules = rules_for(app["fallback"]["decide_on"])
    judged = {start: decide(f, rules, np.array(calibration.thresholds[0]))[0]
              for start, f, judge in zip(starts, features, judges) if judge}
    return run.events, judged


def replay_against_reference(board, plan, modules, recording):
    """The firmware's ALERTs and flagged windows, checked equal to the reference's."""
    result = replay(board, recording, extra_files=modules)
    assert result.bad_frames == 0
    events, judged = reference(plan, recording)
    alerts = [p.fields for p in result.packets if p.kind == "ALERT"]
    got = [(a["sample"], ALERT_RULES[a["rule"]], bool(a["raised"]), a["value"]) for a in alerts]
    assert got == [(e.sample, e.rule, e.raised, e.value) for e in events], "firmware == reference, to the sample"
    windows = {p.fields["start_sample"]: p.fields["decision"] for p in result.packets if p.kind == "WINDOW"}
    assert windows == {start: d for start, d in judged.items() if d != NORMAL}, "the same windows judged, the same way"
    return alerts, windows


def first_sensor_report(alerts, kind, onset, latency_blocks, block):
    reports = [a["sample"] for a in alerts if ALERT_RULES[a["rule"]] in SENSOR_RULES and a["raised"]]
    assert reports, f"the {kind} sensor was never reported"
    assert onset <= reports[0] < onset + latency_blocks * block, f"reported {reports[0] - onset} samples after onset"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_sensor_fault_is_reported_first_and_never_as_a_machine_fault(board, floor_plan, kind, seed):
    plan, modules = floor_plan
    recording, onset = inject(kind, seed)
    alerts, windows = replay_against_reference(board, plan, modules, recording)
    first_sensor_report(alerts, kind, onset, 2, plan.app["sampling"]["block_samples"])
    machine = [a for a in alerts if ALERT_RULES[a["rule"]] in MACHINE_RULES and a["raised"]]
    assert machine == [], "a bad sensor must not raise a machine ALERT"
    window = plan.app["sampling"]["window_samples"]
    cleared = max(a["sample"] for a in alerts if ALERT_RULES[a["rule"]] in SENSOR_RULES and not a["raised"])
    flagged = sorted(start for start, decision in windows.items() if start + window > onset and start <= cleared)
    assert flagged == [], f"windows judged not normal on the bad sensor's samples: {flagged}"


SAFETY_LEVELS = """
import faultline
running = faultline.start()
seen = []
while faultline.service():
    level = running.safety.value()
    if not seen or seen[-1][1] != level:
        seen.append((running.read, level))
print("levels", seen, running.channels[0].fast.tripped[0])
"""


def test_a_tripped_machine_limit_on_a_bad_sensor_does_not_hold_the_safety_output(board, floor_plan, tmp_path):
    """An impact trips the peak limit (safety output high); the sensor then reads a rail: the output drops."""
    plan, modules = floor_plan
    machine, rng = scenario_machine(31)
    x = machine_run(machine, 8, rng)
    ring = np.arange(120)
    x[3 * RATE : 3 * RATE + 120] += (20000 * np.exp(-ring / 15) * np.sin(2 * np.pi * 260 * ring / RATE)).astype(np.int64)
    x[3 * RATE + 400 :] = SENSOR_LIMIT
    recording = np.clip(x, -32768, 32767).astype(np.int16)
    events, _ = reference(plan, recording.reshape(-1, 1))
    order = [(e.rule, e.raised) for e in events]
    assert order[0] == ("peak", True) and order.index(("saturated", True)) > 0
    scenario = tmp_path / "scenario.i16"
    recording.tofile(scenario)
    with FirmwareWorkspace(board, extra_files=modules) as workspace:
        result = workspace.run_code(SAFETY_LEVELS, {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "l")})
    assert result.returncode == 0, result.stderr
    line = next(text for text in result.stdout.splitlines() if text.startswith("levels"))
    levels = [level for _, level in eval(line.split(" ", 1)[1].rsplit(" ", 1)[0])]
    assert levels == [0, 1, 0], f"safety output over the run: {line}"
    assert line.endswith(" 1"), "the peak trip itself holds; only its hold on the safety output is released"


CLEAR_CASES = [(limit, permille) for limit in (1, 999, 1000, 1_431_655, 1_431_656, 2**30 - 1) for permille in (1, 500, 750, 999)]


def test_clear_level_stays_inside_31_bits_and_matches_the_exact_product(board):
    """limit * permille // 1000 left 31 bits for energy limits over 1,431,655 (a big int per block on a 32-bit board)."""
    from hostgen.dsp.fastpath import clear_level

    for limit, permille in CLEAR_CASES:
        assert clear_level(limit, permille) == limit * permille // 1000
        assert limit // 1000 * permille < 2**30 and limit % 1000 * permille < 2**30
    with FirmwareWorkspace(board) as workspace:
        result = workspace.run_code(f"import fastpath\nprint([fastpath.clear_level(l, p) for l, p in {CLEAR_CASES!r}])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([clear_level(limit, permille) for limit, permille in CLEAR_CASES]), "the board's copy"

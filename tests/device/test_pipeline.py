"""The tier-1 firmware end to end on the real MicroPython VM, against the host reference."""

from __future__ import annotations

import numpy as np
import pytest
from device_support import board_config

from hostgen.board.packets import ALERT_RULES
from hostgen.board.replay import replay
from hostgen.dsp.fastpath import RULES, SENSOR_RULES, run_channel_blocks, settle_blocks
from hostgen.dsp.features import DECISIONS, NORMAL, decide, rules_for, stream_features
from hostgen.dsp.fir import filter_signal


def reference(plan, recording):
    """(fast-path events, judged window starts, their features, their decisions, withheld starts) the reference gives."""
    app, design, calibration = plan.app, plan.design, plan.calibration
    raw = recording[:, 0]
    filtered = filter_signal(design.coeffs, raw)
    run = run_channel_blocks(raw, filtered, design.taps, calibration.limits(0), app)
    block, window, stride = (app["sampling"][k] for k in ("block_samples", "window_samples", "stride_samples"))
    offset = settle_blocks(design.taps, block) * block
    end = len(raw) // block * block
    starts = list(range(offset, end - window + 1, stride))
    judged = [k for k, start in enumerate(starts) if run.judges((start + window) // block - 1)]
    features = stream_features(filtered[offset:end], raw[offset:end], window, stride, np.isin(range(len(starts)), judged))
    withheld = [starts[k] for k in range(len(starts)) if k not in judged]
    rules = rules_for(app["fallback"]["decide_on"])
    decided = [decide(features[k], rules, np.array(calibration.thresholds[0])) for k in judged]
    return run.events, [starts[k] for k in judged], features[judged], decided, withheld


@pytest.fixture(scope="module")
def replays(board, scenarios):
    return {name: replay(board, recording) for name, (recording, _) in scenarios.items()}


def alerts(result):
    return [p.fields for p in result.packets if p.kind == "ALERT"]


@pytest.mark.parametrize("name", ["normal", "bearing_fault", "impact", "stuck", "saturated", "stuck_then_impacts"])
def test_firmware_matches_the_reference_exactly(replays, scenarios, plan, name):
    recording, _ = scenarios[name]
    result = replays[name]
    assert result.bad_frames == 0
    events, starts, features, decided, _ = reference(plan, recording)
    got = [(a["sample"], ALERT_RULES[a["rule"]], bool(a["raised"]), a["value"]) for a in alerts(result)]
    assert got == [(e.sample, e.rule, e.raised, e.value) for e in events]
    windows = {p.fields["start_sample"]: p.fields for p in result.packets if p.kind == "WINDOW"}
    summarised = sum(p.fields["windows"] for p in result.packets if p.kind == "SUMMARY")
    flagged = [k for k, (decision, _, _) in enumerate(decided) if decision != NORMAL]
    assert sorted(windows) == [starts[k] for k in flagged]
    assert summarised + len(windows) == len(starts), "every judged window is sent or summarised"
    for k in flagged:
        packet, (decision, rule, score) = windows[starts[k]], decided[k]
        assert (packet["decision"], packet["rule"], packet["score_q8"], packet["tier"]) == (decision, rule, score, 0)
        assert [packet[f] for f in ("mean", "rms", "peak", "crest_q8", "kurtosis_q8", "zcr")] == list(features[k][:6])  # periodicity is not sent


def test_normal_running_raises_nothing(replays):
    result = replays["normal"]
    assert alerts(result) == []
    assert not any(p.fields["decision"] == 2 for p in result.packets if p.kind == "WINDOW")


def test_bearing_fault_is_decided_fault_on_calibrated_thresholds(board, scenarios, calibrated_config):
    """Calibrated on this machine's normal running (as on the floor), the developed fault is flagged."""
    recording, facts = scenarios["bearing_fault"]
    result = replay(board, recording, config_json=calibrated_config)
    windows = [p.fields for p in result.packets if p.kind == "WINDOW"]
    late = [w for w in windows if w["start_sample"] >= facts["fault_at"]]
    early = [w for w in windows if w["start_sample"] + 256 <= facts["fault_at"]]
    expected = (len(recording) - facts["fault_at"]) // 128 - 1
    assert len(late) >= 0.9 * expected, "flagged (suspect or fault)"
    assert sum(w["decision"] == 2 for w in late) >= 0.7 * expected
    assert len(early) <= 0.05 * (facts["fault_at"] // 128)


def test_impact_trips_the_fast_path_within_a_block_plus_debounce(replays, scenarios, plan):
    recording, facts = scenarios["impact"]
    app, design = plan.app, plan.design
    block, debounce = app["sampling"]["block_samples"], app["fastpath"]["debounce_blocks"]
    peak_alerts = [a for a in alerts(replays["impact"]) if ALERT_RULES[a["rule"]] == "peak" and a["raised"]]
    assert peak_alerts, "the impact must trip the peak limit"
    filtered = filter_signal(design.coeffs, recording[:, 0])
    first_over = int(np.argmax(np.abs(filtered.astype(int)) > plan.calibration.peak_limits[0]))
    assert first_over >= facts["impact_at"]
    latency = peak_alerts[0]["sample"] - first_over + 1
    assert 1 <= latency <= block * debounce, f"{latency} samples from the first sample over the limit to the ALERT"
    again = replay(plan.board, recording)
    assert alerts(again) == alerts(replays["impact"]), "the same input must give the same trip sample"


@pytest.mark.parametrize("name, rule", [("stuck", "stuck"), ("saturated", "saturated")])
def test_bad_sensor_is_reported_not_a_machine_fault(replays, scenarios, app, name, rule):
    _, facts = scenarios[name]
    start, end = facts[f"{name}_from"], facts[f"{name}_to"]
    hold = app["fastpath"]["hold_blocks"] * app["sampling"]["block_samples"]
    found = alerts(replays[name])
    raised = [a for a in found if ALERT_RULES[a["rule"]] == rule and a["raised"]]
    cleared = [a for a in found if ALERT_RULES[a["rule"]] == rule and not a["raised"]]
    block = app["sampling"]["block_samples"]
    first_report = min(a["sample"] for a in found if ALERT_RULES[a["rule"]] in SENSOR_RULES and a["raised"])
    assert start <= first_report < start + 2 * block, "a sensor fault is reported within two blocks"
    needed = app["fastpath"]["stuck_samples" if rule == "stuck" else "saturation_samples"]
    assert len(raised) == 1 and start <= raised[0]["sample"] < start + needed + 2 * block
    assert len(cleared) == 1 and end + hold - block <= cleared[0]["sample"] < end + hold + 200
    machine = [a for a in found if ALERT_RULES[a["rule"]] in ("peak", "energy")]
    assert not [a for a in machine if start <= a["sample"] <= end + hold + 200], "a bad sensor must not trip the machine limits"


def test_steady_state_byte_rate_is_a_small_share_of_raw(replays, scenarios):
    result = replays["normal"]
    seconds = len(scenarios["normal"][0]) / 1000
    rate = result.link_bytes / seconds
    assert rate < 0.1 * 2000, f"{rate:.0f} B/s vs 2000 B/s raw"


def test_heartbeats_carry_health(replays):
    beats = [p.fields for p in replays["normal"].packets if p.kind == "HEARTBEAT"]
    assert len(beats) == 30_000 // 5000 + 1
    assert all(b["overruns"] == 0 and b["dropped"] == 0 and b["tier2_errors"] == 0 for b in beats)
    assert all(0 < b["loop_p50_us"] <= b["loop_p99_us"] for b in beats)
    boot = next(p for p in replays["normal"].packets if p.kind == "BOOT")
    assert boot.fields["rate_hz"] == 1000 and boot.fields["config_source"] == 0 and boot.seq == 0
    sequence = [p.seq for p in replays["normal"].packets]
    assert sequence == list(range(len(sequence))), "no gaps: nothing was dropped"


def test_decisions_names_are_complete():
    assert DECISIONS == ("normal", "suspect", "fault") and RULES[:2] == ("peak", "energy")
    assert ALERT_RULES == RULES


def test_config_json_thresholds_apply(board, scenarios, plan):
    recording, _ = scenarios["normal"]
    lowest = [2 if label.endswith((">=fault", "<=suspect")) else 1 for label in plan.calibration.rules]  # a lower rule's fault sits under
    config = board_config(plan, [lowest], plan.calibration.peak_limits, plan.calibration.energy_limits)
    result = replay(board, recording[:20_000], config_json=config)
    boot = next(p for p in result.packets if p.kind == "BOOT")
    assert boot.fields["config_source"] == 1
    windows = [p.fields for p in result.packets if p.kind == "WINDOW"]
    assert windows and all(w["decision"] == 2 for w in windows), "every upper threshold at 1 flags every window"


@pytest.mark.parametrize("text, source, word", [
    ("{not json", 2, "corrupt"),
    ('{"build": "elsewhere", "thresholds": [], "peak_limits": [], "energy_limits": []}', 3, "foreign"),
    ('{"build": 1}', 2, "corrupt"),
])
def test_corrupt_or_foreign_config_means_safe_defaults(board, scenarios, text, source, word):
    result = replay(board, scenarios["normal"][0][:4000], config_json=text)
    boot = next(p for p in result.packets if p.kind == "BOOT")
    assert boot.fields["config_source"] == source
    assert f"settings={word}" in result.console

"""`hostgen calibrate`: thresholds and limits from one machine's recordings, into the build."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hostgen.appconfig import load_app
from hostgen.boards import Board
from hostgen.build import default_out, generate
from hostgen.calibration import recording_calibration
from hostgen.dsp import calibration_path
from hostgen.errors import HostgenError
from hostgen.fir import design_fir


def calibrate(board: Board, normal: list[Path], faults: list[Path], rate_hz: int | None, app_path: str | None, log) -> dict:
    app = load_app(app_path)
    if rate_hz is not None:
        if rate_hz <= 0:
            raise HostgenError(f"--rate {rate_hz} is not a sample rate; give the recording's rate in Hz, e.g. --rate 1000")
        app["sampling"]["rate_hz"] = rate_hz
    design = design_fir(app)
    calibration = recording_calibration(app, design, normal, faults)
    target = calibration_path(board.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text(calibration.to_json())
    os.replace(partial, target)
    out = default_out(board)
    rebuilt = None
    previous = out / "build.json"
    if previous.is_file():
        record = json.loads(previous.read_text())
        log(f"regenerating {out} with the new thresholds")
        generate(board, record.get("model_arg"), None, record["model_name"], record["size"]["budget_fraction"], out, app_path, log)
        rebuilt = str(out)
    return {
        "board": board.name,
        "calibration": str(target),
        "rebuilt": rebuilt,
        "rate_hz": calibration.rate_hz,
        "rules": calibration.rules,
        "thresholds": calibration.thresholds,
        "peak_limits": calibration.peak_limits,
        "energy_limits": calibration.energy_limits,
        "report": calibration.report,
    }


def format_calibration(result: dict) -> str:
    lines = [f"calibration for {result['board']} written to {result['calibration']}"]
    lines.append(f"build regenerated: {result['rebuilt']}" if result["rebuilt"] else "no build yet: 'hostgen gen' will use it")
    for channel in result["report"]["channels"]:
        c = channel["channel"]
        lines.append(f"channel {c}: {channel['derived_from']}")
        lines.append(f"  {'rule':<20}{'threshold':>10}{'normal (held out)':>20}" + "".join(f"{Path(f).name[:14]:>16}" for f in channel["faults"]))
        held = channel["heldout_normal"]
        for rule, threshold in zip(result["rules"], result["thresholds"][c]):
            rates = "".join(f"{fault['per_rule'].get(rule, 0):>16.1%}" for fault in channel["faults"].values())
            lines.append(f"  {rule:<20}{threshold:>10}{held.get('per_rule', {}).get(rule, 0):>20.2%}{rates}")
        flagged = "".join(f"{fault.get('flagged', 0):>16.1%}" for fault in channel["faults"].values())
        lines.append(f"  {'any rule (flagged)':<30}{held.get('flagged', 0):>20.2%}{flagged}")
        fast = channel["fast_path"]
        lines.append(
            f"  fast path: peak limit {result['peak_limits'][c]}, energy limit {result['energy_limits'][c]}; "
            f"{fast['heldout_trips']} trips in {fast['heldout_seconds']} s of held-out normal running"
        )
        sensor = channel["sensor"]
        learned = ", ".join(f"{side} learned from {seen['flat_tops']} flat tops" for side, seen in sensor["clip_learned"].items())
        lines.append(f"  sensor: rails at {sensor['clip_levels'][0]} / {sensor['clip_levels'][1]}"
                     f"{' (' + learned + ')' if learned else ' (full scale)'}, noise: {sensor['noise_limit']} crossings within a {sensor['quiet_range']}-count span")
        lines.append(f"  {'held out, per recording':<44}{'windows':>8}{'flagged':>9}{'trips':>7}  sensor events")
        for path, part in {**channel["heldout_per_recording"], **channel["faults"]}.items():
            events = ", ".join(f"{rule} x{count}" for rule, count in part["sensor_events"].items()) or "-"
            kind = "fault " if path in channel["faults"] else "normal"
            lines.append(f"  {kind} {Path(path).name[:37]:<37}{part['windows']:>8}{part.get('flagged', 0):>9.2%}"
                         f"{part['fast_path_trips']:>7}  {events}")
    return "\n".join(lines)

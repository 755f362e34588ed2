"""`hostgen calibrate`: fallback thresholds and fast-path limits from one machine's recordings, into the build."""

from __future__ import annotations

import json
from pathlib import Path

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = "derive fallback thresholds and fast-path limits from a machine's recording"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    parser.add_argument("--normal", required=True, action="append",
                        help="int16 .npy of normal running, (samples,) or (samples, channels); repeat it for several "
                             "speeds, loads or days, or give a directory of them")
    parser.add_argument("--fault", action="append", default=[], help="int16 .npy of faulty running (repeatable)")
    parser.add_argument("--rate", type=int, help="the recordings' sample rate in Hz (default: the app config's)")
    arguments.as_json(parser)


def run(args) -> int:
    from hostgen.config.board import load_board

    report = calibrate(load_board(args.board), [Path(n) for n in args.normal], [Path(f) for f in args.fault], args.rate, args.app)
    print(json.dumps(report, indent=2) if args.json else format_calibration(report))
    return 0


def calibrate(board, normal: list[Path], faults: list[Path], rate_hz: int | None, app_path: str | None) -> dict:
    from hostgen.codegen.build import RECORD, app_config_for, default_out, regenerate
    from hostgen.config.app import load_app
    from hostgen.dsp.calibration import recording_calibration
    from hostgen.dsp.fir import design_fir
    from hostgen.dsp.plan import calibration_path
    from hostgen.util.atomic import write_atomic

    app_path = app_config_for(board, app_path, arguments.log)
    app = load_app(app_path)
    if rate_hz is not None:
        if rate_hz <= 0:
            raise HostgenError(f"--rate {rate_hz} is not a sample rate; give the recording's rate in Hz, e.g. --rate 1000")
        app["sampling"]["rate_hz"] = rate_hz
    calibration = recording_calibration(app, design_fir(app), normal, faults)
    target = calibration_path(board.name)
    write_atomic(target, calibration.to_json())
    out = default_out(board)
    rebuilt = None
    model_limit = _model_limit(out, board, app, normal, faults) if (out / RECORD).is_file() else None
    if (out / RECORD).is_file():
        arguments.log(f"regenerating {out} with the new thresholds")
        regenerate(out, arguments.log, app=str(Path(app_path).resolve()) if app_path else None)
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
        "model_limit": model_limit,
    }


def _model_limit(out: Path, board, app: dict, normal: Path, faults: list[Path]) -> dict | None:
    """A reconstruction model's limit from this machine's normal running; held-out false alarms; detection on faults."""
    import numpy as np

    from hostgen.codegen.tier2_files import model_limit_path
    from hostgen.data.recordings import load_recording
    from hostgen.dsp.calibration import DERIVATION_SHARE
    from hostgen.model.engine.generate import compile_model
    from hostgen.model.tflite import load_model
    from hostgen.model.tier2 import model_windows, reconstruction_errors, reconstruction_limit
    from hostgen.util.atomic import write_atomic

    record = json.loads((out / "build.json").read_text())
    if record["tier2"].get("kind") != "reconstruction" or record["tier2"]["engine"] != "on":
        return None
    model = load_model(out / f"{record['model_name']}.tflite")
    compiled = compile_model(model, record["model_name"], "hostgen calibrate", app["model"]["input_recipe"], "reconstruction")
    stride = app["sampling"]["stride_samples"]
    counts = load_recording(normal, app["sampling"]["channels"])
    split = int(len(counts) * DERIVATION_SHARE)
    derive = reconstruction_errors(compiled, model_windows(counts[:split], compiled, stride))
    held = reconstruction_errors(compiled, model_windows(counts[split:], compiled, stride))
    limit = reconstruction_limit(derive, app)
    detected = {str(path): round(float(np.mean(reconstruction_errors(
        compiled, model_windows(load_recording(path, app["sampling"]["channels"]), compiled, stride)) >= limit)), 4)
        for path in faults}
    result = {"model_sha256": model.sha256, "limit": limit, "derived_from": f"{len(derive)} windows of {normal}",
              "heldout_false_alarms": round(float(np.mean(held >= limit)), 4) if len(held) else None, "faults_flagged": detected}
    write_atomic(model_limit_path(board), json.dumps(result, indent=2) + "\n")
    return result


def format_calibration(result: dict) -> str:
    lines = [f"calibration for {result['board']} written to {result['calibration']}"]
    if result["model_limit"]:
        limit = result["model_limit"]
        flagged = ", ".join(f"{Path(p).name} {share:.1%}" for p, share in limit["faults_flagged"].items()) or "no fault recordings"
        lines.append(f"reconstruction model: limit {limit['limit']} from {limit['derived_from']}; held-out false alarms "
                     f"{limit['heldout_false_alarms']:.2%}; flagged: {flagged}")
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
                     f"{' (' + learned + ')' if learned else ' (full scale)'}, noise: {sensor['noise_limit']} crossings within a "
                     f"{sensor['quiet_range']}-count span")
        lines.append(f"  {'held out, per recording':<44}{'windows':>8}{'flagged':>9}{'trips':>7}  sensor events")
        for path, part in {**channel["heldout_per_recording"], **channel["faults"]}.items():
            events = ", ".join(f"{rule} x{count}" for rule, count in part["sensor_events"].items()) or "-"
            kind = "fault " if path in channel["faults"] else "normal"
            lines.append(f"  {kind} {Path(path).name[:37]:<37}{part['windows']:>8}{part.get('flagged', 0):>9.2%}"
                         f"{part['fast_path_trips']:>7}  {events}")
    return "\n".join(lines)

"""`hostgen replay`: a build's firmware on the MicroPython unix port over a recording: packets and figures."""

from __future__ import annotations

import json
from pathlib import Path

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = "run the firmware on the MicroPython unix port over a recording"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.app(parser)
    parser.add_argument("--data", required=True, help="int16 .npy recording, (samples,) or (samples, channels)")
    parser.add_argument("--rate", type=int, help="the recording's sample rate in Hz (must match the build's)")
    parser.add_argument("--events", help='JSON of fault onsets, e.g. [{"onset_s": 8.0, "kind": "outer_race"}]: prints the '
                                         "detection latency, flagged share after onset, false alarms before it and sensor faults")
    arguments.as_json(parser, "one JSON object per packet, then the figures")


def run(args) -> int:
    from hostgen.config.board import load_board

    board = load_board(args.board)
    events = Path(args.events) if args.events else None
    print(replay_recording(board, Path(args.data), args.rate, args.app, args.json, arguments.log, events))
    return 0


def replay_recording(board, data: Path, rate_hz: int | None, app_path: str | None, as_json: bool, log,
                     events_path: Path | None = None) -> str:
    from hostgen.board.image import build_firmware
    from hostgen.board.replay import replay
    from hostgen.board.replay_events import event_figures, format_events, load_events
    from hostgen.board.stream import packet_line
    from hostgen.codegen.build import build_with_app, recorded_request
    from hostgen.data.recordings import load_recording
    from hostgen.dsp.plan import plan_dsp

    build = build_with_app(board, app_path, log)
    plan = plan_dsp(board, recorded_request(build).app)
    sampling = plan.app["sampling"]
    recording = load_recording(data, sampling["channels"])
    events = load_events(events_path, data, sampling["rate_hz"], sampling["channels"]) if events_path else None
    if rate_hz is not None and rate_hz != sampling["rate_hz"]:
        raise HostgenError(
            f"--rate {rate_hz} Hz, but {board.name}'s build samples at {sampling['rate_hz']} Hz; "
            f"resample the recording or calibrate with --rate {rate_hz}"
        )
    result = replay(board, recording, modules=build_firmware(build))
    log(f"{board.name}'s heap is {board['micropython']['heap_bytes']} bytes on its 32-bit MCU; the 64-bit unix port's objects "
        f"are up to twice as big, so this run has {result.heap_bytes}")
    seconds = result.samples / sampling["rate_hz"]
    raw_rate = 2 * sampling["rate_hz"] * sampling["channels"]
    figures = {
        "samples": result.samples,
        "seconds": round(seconds, 2),
        "blocks": result.blocks,
        "loop_p50_us": result.loop_p50_us,
        "loop_p99_us": result.loop_p99_us,
        "loop_max_us": result.loop_max_us,
        "heap_limit_bytes": result.heap_bytes,
        "heap_peak_bytes": result.heap_peak_bytes,
        "link_bytes": result.link_bytes,
        "link_bytes_per_second": round(result.link_bytes / seconds, 1) if seconds else None,
        "raw_bytes_per_second": raw_rate,
        "bad_frames": result.bad_frames,
        "packets": {kind: sum(p.kind == kind for p in result.packets) for kind in ("BOOT", "ALERT", "WINDOW", "SUMMARY", "HEARTBEAT")},
    }
    lines = [packet_line(packet, as_json, plan.calibration.rules) for packet in result.packets]
    judged = None
    if events is not None:
        judged = event_figures(result.packets, events, result.samples, plan.design.taps, sampling, sampling["channels"])
    if as_json:
        lines.append(json.dumps({"figures": figures, **({"events": judged} if judged is not None else {})}))
    else:
        lines.append(
            f"{figures['samples']} samples ({figures['seconds']} s) in {figures['blocks']} blocks; loop p50/p99/max "
            f"{figures['loop_p50_us']}/{figures['loop_p99_us']}/{figures['loop_max_us']} us on this host; heap peak "
            f"{figures['heap_peak_bytes']} of {figures['heap_limit_bytes']} bytes; link {figures['link_bytes_per_second']} B/s "
            f"vs {raw_rate} B/s raw"
        )
        if judged is not None:
            lines += format_events(judged, data)
    return "\n".join(lines)

"""`hostgen replay`: check a build's firmware against a recording, packets and figures."""

from __future__ import annotations

import json
from pathlib import Path

from hostgen.boards import Board
from hostgen.calibration import load_recording
from hostgen.dsp import plan_dsp
from hostgen.errors import HostgenError
from hostgen.replay import replay
from hostgen.replay_events import event_figures, format_events, load_events
from hostgen.stream import packet_line


def replay_recording(board: Board, data: Path, rate_hz: int | None, app_path: str | None, as_json: bool, log,
                     events_path: Path | None = None) -> str:
    plan = plan_dsp(board, app_path)
    sampling = plan.app["sampling"]
    recording = load_recording(data, sampling["channels"])
    events = load_events(events_path, data, sampling["rate_hz"], sampling["channels"]) if events_path else None
    if rate_hz is not None and rate_hz != sampling["rate_hz"]:
        raise HostgenError(
            f"--rate {rate_hz} Hz, but {board.name}'s build samples at {sampling['rate_hz']} Hz; "
            f"resample the recording or calibrate with --rate {rate_hz}"
        )
    result = replay(board, recording, app_path)
    if result.heap_bytes != board["micropython"]["heap_bytes"]:
        log(f"{board.name}'s heap figure is {board['micropython']['heap_bytes']} bytes (a 32-bit estimate); the 64-bit "
            f"unix port needs {result.heap_bytes} for the same firmware, so this run uses that")
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

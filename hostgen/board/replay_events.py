"""What a replay says about known events: `hostgen replay --events events.json`.

events.json gives, per recording (by file name), its fault onsets:
    {"motor_a.npy": [{"onset_s": 8.0, "kind": "outer_race"}, {"onset_s": 30, "kind": "imbalance", "channel": 1}]}
or, for the one recording replayed, just the list. Per event, from the firmware's packets:
the detection latency from onset (the first flagged window or machine ALERT after it), the
share of the windows after onset that were flagged, the false alarms before the first onset
and the sensor faults reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hostgen.board.packets import ALERT_RULES, Packet
from hostgen.dsp.fastpath import MACHINE_RULES, SENSOR_RULES, settle_blocks
from hostgen.errors import HostgenError


@dataclass(frozen=True)
class FaultEvent:
    onset: int  # sample
    kind: str
    channel: int | None  # None: every channel


def load_events(path: Path, recording: Path, rate_hz: int, channels: int) -> list[FaultEvent]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HostgenError(f"cannot read events file {path} ({exc}); give JSON like "
                           '[{"onset_s": 8.0, "kind": "outer_race"}]') from None
    if isinstance(raw, dict):
        if recording.name not in raw:
            raise HostgenError(f"events file {path} names {sorted(raw)} but not {recording.name}; add its onsets under that name")
        raw = raw[recording.name]
    if not isinstance(raw, list):
        raise HostgenError(f"events file {path}: want a list of onsets, or an object of lists by recording name")
    events = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("onset_s"), (int, float)) or not isinstance(item.get("kind"), str):
            raise HostgenError(f"events file {path}: onset {item!r} needs onset_s (seconds) and kind (text)")
        channel = item.get("channel")
        if channel is not None and not (isinstance(channel, int) and 0 <= channel < channels):
            raise HostgenError(f"events file {path}: channel {channel!r} of {item!r}; the recording has channels 0..{channels - 1}")
        events.append(FaultEvent(round(item["onset_s"] * rate_hz), item["kind"], channel))
    return sorted(events, key=lambda e: e.onset)


def window_starts(samples: int, taps: int, sampling: dict) -> list[int]:
    """Where the firmware's windows start over a recording of `samples`: one every stride once the filter settled."""
    block, window, stride = sampling["block_samples"], sampling["window_samples"], sampling["stride_samples"]
    first, usable = settle_blocks(taps, block) * block, samples // block * block
    return list(range(first, usable - window + 1, stride))


def event_figures(packets: list[Packet], events: list[FaultEvent], samples: int, taps: int, sampling: dict,
                  channels: int) -> list[dict]:
    window, rate_hz = sampling["window_samples"], sampling["rate_hz"]
    starts = window_starts(samples, taps, sampling)
    flagged = {(p.fields["channel"], p.fields["start_sample"]) for p in packets if p.kind == "WINDOW"}
    alerts = [p.fields for p in packets if p.kind == "ALERT" and p.fields["raised"]]
    first_onset = events[0].onset if events else samples
    out = []
    for index, event in enumerate(events):
        ends_at = events[index + 1].onset if index + 1 < len(events) else samples
        watched = range(channels) if event.channel is None else [event.channel]
        after = [(c, s) for c in watched for s in starts if event.onset <= s and s + window <= ends_at]
        before = [(c, s) for c in watched for s in starts if s + window <= first_onset]
        hits = sorted(s + window - 1 for c, s in after if (c, s) in flagged)
        machine = [a["sample"] for a in alerts if ALERT_RULES[a["rule"]] in MACHINE_RULES and a["channel"] in watched]
        detected = min([s for s in hits] + [s for s in machine if event.onset <= s < ends_at], default=None)
        sensor = [a for a in alerts if ALERT_RULES[a["rule"]] in SENSOR_RULES and a["channel"] in watched]
        out.append({
            "kind": event.kind,
            "onset_s": round(event.onset / rate_hz, 3),
            "channel": event.channel,
            "latency_ms": None if detected is None else round((detected - event.onset + 1) * 1000 / rate_hz, 1),
            "windows_after_onset": len(after),
            "flagged_after_onset": len(hits),
            "flagged_share": round(len(hits) / len(after), 4) if after else None,
            "windows_before_onset": len(before),
            "false_alarms_before_onset": sum(1 for w in before if w in flagged),
            "machine_alerts_before_onset": sum(1 for s in machine if s < first_onset),
            "sensor_faults": [f"{ALERT_RULES[a['rule']]} ch{a['channel']} at {a['sample'] / rate_hz:.2f} s" for a in sensor],
        })
    return out


def format_events(figures: list[dict], recording: Path) -> list[str]:
    lines = [f"events in {recording.name}:"]
    for f in figures:
        where = "every channel" if f["channel"] is None else f"ch{f['channel']}"
        latency = "NOT detected" if f["latency_ms"] is None else f"detected after {f['latency_ms']:g} ms"
        share = "-" if f["flagged_share"] is None else f"{f['flagged_share']:.1%}"
        lines.append(f"  {f['kind']} at {f['onset_s']:g} s on {where}: {latency}; {f['flagged_after_onset']} of "
                     f"{f['windows_after_onset']} windows after onset flagged ({share})")
        lines.append(f"    before onset: {f['false_alarms_before_onset']} of {f['windows_before_onset']} windows flagged, "
                     f"{f['machine_alerts_before_onset']} machine ALERT(s); sensor faults: {', '.join(f['sensor_faults']) or 'none'}")
    return lines

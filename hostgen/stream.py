"""Packet streams from a file, a serial port or a pty, decoded as they arrive."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from hostgen.errors import HostgenError
from hostgen.packets import Packet, SequenceTracker, StreamDecoder, describe

CHUNK = 4096


def open_source(source: str, baud: int):
    """A readable byte stream: a file, or a serial device / pty / pyserial URL."""
    import serial

    if "://" in source:
        try:
            return serial.serial_for_url(source, baudrate=baud, timeout=0.1)
        except (serial.SerialException, ValueError) as exc:
            raise HostgenError(f"cannot open {source}: {exc}") from None
    path = Path(source)
    try:
        mode = path.stat().st_mode
    except OSError:
        raise HostgenError(f"packet source {source} not found; give a file, a serial port (/dev/ttyUSB0) or a pty") from None
    if stat.S_ISCHR(mode):
        try:
            return serial.Serial(source, baud, timeout=0.1)
        except serial.SerialException as exc:
            raise HostgenError(f"cannot open serial port {source}: {exc}") from None
    return path.open("rb")


def read_packets(stream, decoder: StreamDecoder, idle_seconds: float | None, on_packet) -> None:
    """Feed the decoder until end of file, or until a serial source is idle for `idle_seconds`."""
    is_file = hasattr(stream, "seekable") and not hasattr(stream, "in_waiting")
    last_data = time.monotonic()
    while True:
        data = stream.read(CHUNK)
        if data:
            last_data = time.monotonic()
            for packet in decoder.feed(data):
                on_packet(packet)
        elif is_file or idle_seconds is not None and time.monotonic() - last_data >= idle_seconds:
            decoder.finish()
            return


def packet_line(packet: Packet, as_json: bool, rule_names: list[str] | None = None) -> str:
    if as_json:
        return json.dumps(packet.as_dict())
    return f"{packet.seq:>8} {packet.ticks_ms:>10} node {packet.node:<5} {describe(packet, rule_names)}"


def summary_line(decoder: StreamDecoder, packets: int, as_json: bool, tracker: SequenceTracker | None = None) -> str:
    figures = {"packets": packets, "frames": decoder.frames, "bad_frames": decoder.bad_frames, "bytes": decoder.bytes_in}
    nodes = tracker.figures() if tracker else {}
    if as_json:
        return json.dumps({"summary": {**figures, "nodes": {str(node): f for node, f in nodes.items()}}})
    line = f"{packets} packets from {decoder.frames} frames, {decoder.bad_frames} bad frames skipped, {decoder.bytes_in} bytes"
    return "\n".join([line] + [sequence_line(node, f) for node, f in nodes.items()])


def sequence_line(node, figures: dict) -> str:
    """What a node's sequence numbers said, e.g. 'node 1: 40 packets, 3 missing in 2 gaps, 1 duplicate, ...'."""
    return (f"node {node}: {figures['packets']} packets, {figures['missing']} missing in {figures['gaps']} gap(s), "
            f"{figures['duplicates']} duplicate(s), {figures['reordered']} reordered, {figures['restarts']} restart(s)")


SEQUENCE_MARKS = {"duplicate": " [DUPLICATE]", "late": " [LATE: reordered]", "restart": " [RESTART]", "new": ""}


WINDOW_COLUMNS = ("channel", "start_sample", "decision", "tier", "rule", "score_q8", "confidence_q8",
                  "mean", "rms", "peak", "crest_q8", "kurtosis_q8", "zcr")


def save_packets(prefix: Path, packets: list[Packet]) -> list[Path]:
    """PREFIX.csv (every packet, one column per field) and PREFIX_windows.npy (WINDOW packets, WINDOW_COLUMNS)."""
    import csv

    import numpy as np

    from hostgen.packets import TYPES

    fields = sorted({name for _, _, names in TYPES.values() for name in names if name})
    table = prefix.with_suffix(".csv")
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seq", "ticks_ms", "node", "type", *fields])
        for p in packets:
            writer.writerow([p.seq, p.ticks_ms, p.node, p.kind, *(p.fields.get(name, "") for name in fields)])
    windows = prefix.with_name(prefix.name + "_windows.npy")
    rows = [[p.fields[c] for c in WINDOW_COLUMNS] for p in packets if p.kind == "WINDOW"]
    np.save(windows, np.array(rows, np.int32).reshape(-1, len(WINDOW_COLUMNS)))
    return [table, windows]


def monitor(source: str, baud: int, seconds: float | None, save: str | None, rule_names: list[str] | None, highlight: bool) -> str:
    """Show packets as they come, with running counts; optionally save them. Ends after `seconds` or Ctrl-C."""
    decoder = StreamDecoder()
    tracker = SequenceTracker()
    packets: list[Packet] = []
    counts: dict[str, int] = {}
    stream = open_source(source, baud)
    started = time.monotonic()
    try:
        while seconds is None or time.monotonic() - started < seconds:
            data = stream.read(CHUNK)
            if not data:
                if not hasattr(stream, "in_waiting"):
                    break  # a file: its end
                continue
            for packet in decoder.feed(data):
                verdict = tracker.check(packet)
                if verdict != "duplicate":
                    packets.append(packet)
                    counts[packet.kind] = counts.get(packet.kind, 0) + 1
                line = packet_line(packet, False, rule_names) + SEQUENCE_MARKS[verdict]
                alarming = packet.kind == "ALERT" and packet.fields["raised"] or packet.kind == "WINDOW" and packet.fields["decision"] == 2
                print(f"\x1b[1;31m{line}\x1b[0m" if alarming and highlight else line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    decoder.finish()
    summary = ", ".join(f"{counts[k]} {k}" for k in sorted(counts)) or "no packets"
    lines = [f"{summary}; {decoder.bad_frames} bad frames; {decoder.bytes_in} bytes in {time.monotonic() - started:.1f} s"]
    lines += [sequence_line(node, f) for node, f in tracker.figures().items()]
    if save:
        lines.append("saved " + ", ".join(str(p) for p in save_packets(Path(save), packets)))
    return "\n".join(lines)

"""Packet streams from a file, a serial port or a pty, decoded as they arrive."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from hostgen.board.packets import Packet, SequenceTracker, StreamDecoder, describe
from hostgen.errors import HostgenError

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
    if stat.S_ISDIR(mode):
        raise HostgenError(f"packet source {source} is a directory; give a file of packets, a serial port or a pty")
    try:
        return path.open("rb")
    except OSError as exc:
        raise HostgenError(f"cannot read packet source {source} ({exc.strerror}); give a readable file") from None


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


SEQUENCE_MARKS = {"duplicate": " [DUPLICATE]", "late": " [LATE: reordered]", "restart": " [RESTART]", "new": "", "link": ""}


WINDOW_COLUMNS = ("channel", "start_sample", "decision", "tier", "rule", "score_q8", "confidence_q8",
                  "mean", "rms", "peak", "crest_q8", "kurtosis_q8", "zcr")


class PacketSaver:
    """PREFIX.csv (every packet, one column per field, written as it comes) and PREFIX_windows.npy
    (WINDOW packets, WINDOW_COLUMNS, written on close). Both are created at once, so a path that
    cannot be written is an error before anything is captured."""

    def __init__(self, prefix: Path):
        import csv

        from hostgen.board.packets import TYPES

        self.table = prefix.with_suffix(".csv")
        self.windows = prefix.with_name(prefix.name + "_windows.npy")
        self.fields = sorted({name for _, _, names in TYPES.values() for name in names if name})
        self.rows: list[list[int]] = []
        try:
            self.file = self.table.open("w", newline="")
            self.windows.touch()
        except OSError as exc:
            raise HostgenError(f"cannot write {exc.filename} ({exc.strerror}); give --save a prefix in a writable directory") from None
        self.writer = csv.writer(self.file)
        self.writer.writerow(["seq", "ticks_ms", "node", "type", *self.fields])

    def add(self, packet: Packet) -> None:
        self.writer.writerow([packet.seq, packet.ticks_ms, packet.node, packet.kind, *(packet.fields.get(n, "") for n in self.fields)])
        self.file.flush()
        if packet.kind == "WINDOW":
            self.rows.append([packet.fields[c] for c in WINDOW_COLUMNS])

    def close(self) -> list[Path]:
        import numpy as np

        self.file.close()
        np.save(self.windows, np.array(self.rows, np.int32).reshape(-1, len(WINDOW_COLUMNS)))
        return [self.table, self.windows]


def monitor(source: str, baud: int, seconds: float | None, save: str | None, rule_names: list[str] | None, highlight: bool) -> str:
    """Show packets as they come, with running counts; optionally save them. Ends after `seconds` or Ctrl-C."""
    if seconds is not None and not 0 < seconds < float("inf"):
        raise HostgenError(f"--seconds {seconds:g}: give a positive number of seconds (or leave it out to run until Ctrl-C)")
    decoder = StreamDecoder()
    tracker = SequenceTracker()
    counts: dict[str, int] = {}
    saver = PacketSaver(Path(save)) if save else None
    try:
        stream = open_source(source, baud)
    except HostgenError:
        if saver is not None:
            saver.close()
        raise
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
                    if saver is not None:
                        saver.add(packet)
                    counts[packet.kind] = counts.get(packet.kind, 0) + 1
                line = packet_line(packet, False, rule_names) + SEQUENCE_MARKS[verdict]
                alarming = packet.kind == "ALERT" and packet.fields["raised"] or packet.kind == "WINDOW" and packet.fields["decision"] == 2
                print(f"\x1b[1;31m{line}\x1b[0m" if alarming and highlight else line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
        saved = saver.close() if saver is not None else []
    decoder.finish()
    summary = ", ".join(f"{counts[k]} {k}" for k in sorted(counts)) or "no packets"
    lines = [f"{summary}; {decoder.bad_frames} bad frames; {decoder.bytes_in} bytes in {time.monotonic() - started:.1f} s"]
    lines += [sequence_line(node, f) for node, f in tracker.figures().items()]
    if saved:
        lines.append("saved " + ", ".join(str(p) for p in saved))
    return "\n".join(lines)

"""`hostgen decode`: a packet stream from a file, serial port or pty; bad frames counted and skipped."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "decode a packet stream from a file, serial port or pty"


def add_arguments(parser) -> None:
    parser.add_argument("source", help="a file of packets, a serial port or pty, or a pyserial URL (socket://...)")
    parser.add_argument("--baud", type=int, default=115_200, help="serial baud rate (default 115200)")
    parser.add_argument("--idle", type=float, default=3.0, help="stop after this many seconds without data (serial)")
    arguments.as_json(parser, "one JSON object per packet")


def run(args) -> int:
    import json

    from hostgen.board.packets import SequenceTracker, StreamDecoder
    from hostgen.board.stream import SEQUENCE_MARKS, open_source, packet_line, read_packets, summary_line

    decoder = StreamDecoder()
    tracker = SequenceTracker()
    count = 0

    def show(packet):
        nonlocal count
        count += 1
        verdict = tracker.check(packet)
        if args.json:
            print(json.dumps({**packet.as_dict(), "sequence": verdict}), flush=True)
        else:
            print(packet_line(packet, False) + SEQUENCE_MARKS[verdict], flush=True)

    stream = open_source(args.source, args.baud)
    try:
        read_packets(stream, decoder, args.idle, show)
    finally:
        stream.close()
    print(summary_line(decoder, count, args.json, tracker))
    return 0

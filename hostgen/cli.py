"""`hostgen <command>`: a table of commands, one handler each, one error type.

A user error prints `hostgen: <message>` on stderr and exits 2; no traceback.
Heavy imports (TensorFlow above all) happen inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hostgen.errors import HostgenError
from hostgen.paths import BUILD_ROOT


def log(message: str) -> None:
    print(f"hostgen: {message}", file=sys.stderr, flush=True)


def cmd_boards(args) -> int:
    from hostgen.boards import board_names, load_board

    for name in board_names():
        board = load_board(name)
        print(
            f"{name:<15} {board['title']:<52} budget {board.budget_bytes():>7,} B  "
            f"model flash {board['flash']['model_size_bytes']:>9,} B"
        )
    return 0


def cmd_size(args) -> int:
    from hostgen.boards import load_board
    from hostgen.budget import format_report, require_fit, size_report
    from hostgen.model_source import resolve_model

    board = load_board(args.board)
    model, _ = resolve_model(args.model, args.calib, log)
    report = size_report(board, model, args.fraction)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    sys.stdout.flush()
    require_fit(report)
    return 0


def cmd_gen(args) -> int:
    from hostgen.boards import load_board
    from hostgen.budget import format_report
    from hostgen.build import default_out, generate

    board = load_board(args.board)
    out = Path(args.out) if args.out else default_out(board)
    report, files = generate(board, args.model, args.calib, args.name, args.fraction, out, args.app, log, args.float_model)
    print(format_report(report))
    print(f"wrote {len(files)} files to {out}")
    return 0


def cmd_qcheck(args) -> int:
    from hostgen.qcheck import REFERENCE_FLOAT, format_qcheck, load_limits, require_gate, run_qcheck
    from hostgen.reference_model import reference_tflite
    from hostgen.tflite_model import load_model

    if (args.model is None) != (args.tflite is None):
        raise HostgenError("give both --model FLOAT.keras and --tflite INT8.tflite, or neither for the reference model")
    limits = load_limits(args.limits, {"max_recall_drop": args.max_recall_drop, "max_false_alarm_increase": args.max_false_alarm_increase,
                                       "min_agreement": args.min_agreement})
    int8 = load_model(args.tflite or reference_tflite(log))
    float_path = Path(args.model) if args.model else REFERENCE_FLOAT
    data, calib = (Path(p) if p else None for p in (args.data, args.calib))
    result = run_qcheck(float_path, int8, data, calib, limits, args.windows, log)
    print(json.dumps(result, indent=2) if args.json else format_qcheck(result))
    sys.stdout.flush()
    require_gate(result)
    return 0


def cmd_calibrate(args) -> int:
    from hostgen.boards import load_board
    from hostgen.calibrate_command import calibrate, format_calibration

    report = calibrate(load_board(args.board), Path(args.normal), [Path(f) for f in args.fault], args.rate, args.app, log)
    print(json.dumps(report, indent=2) if args.json else format_calibration(report))
    return 0


def cmd_filter(args) -> int:
    from hostgen.boards import load_board
    from hostgen.recording_commands import filter_recording

    print(filter_recording(load_board(args.board), Path(args.input), Path(args.output), args.impl, args.app))
    return 0


def cmd_fallback(args) -> int:
    from hostgen.boards import load_board
    from hostgen.recording_commands import fallback_recording, format_fallback

    result = fallback_recording(load_board(args.board), Path(args.input), args.impl, args.app)
    print(json.dumps(result, indent=2) if args.json else format_fallback(result))
    return 0


def cmd_parity(args) -> int:
    from hostgen.boards import load_board
    from hostgen.parity import format_parity, run_parity
    from hostgen.runners import open_runner

    with open_runner(load_board(args.board), args.app, f"hostgen parity --board {args.board}") as runner:
        report = run_parity(runner, args.n, args.windows)
    print(json.dumps(report, indent=2) if args.json else format_parity(report))
    if report["mismatches"]:
        raise HostgenError(f"{report['mismatches']} mismatching comparison(s) between implementations; see the report above")
    return 0


def cmd_decode(args) -> int:
    from hostgen.packets import SequenceTracker, StreamDecoder
    from hostgen.stream import SEQUENCE_MARKS, open_source, packet_line, read_packets, summary_line

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


def cmd_replay(args) -> int:
    from hostgen.boards import load_board
    from hostgen.replay_command import replay_recording

    print(replay_recording(load_board(args.board), Path(args.data), args.rate, args.app, args.json, log))
    return 0


def cmd_vboard(args) -> int:
    from hostgen.boards import load_board
    from hostgen.vboard import run_vboard

    run_vboard(load_board(args.board), args.link, args.gateway, args.scenario, args.app)
    return 0


def cmd_flash(args) -> int:
    from hostgen.boards import load_board
    from hostgen.flash import flash

    print(flash(load_board(args.board), args.port, args.baud, args.firmware, args.dry_run, log, args.key))
    return 0


def _port(args) -> str:
    from hostgen.board_link import find_port
    from hostgen.boards import load_board

    if args.port:
        return args.port
    if not args.board:
        raise HostgenError("give --port (the board's serial port), or --board to find it by its USB ids")
    return find_port(load_board(args.board))


DIAG_CALLS = {
    "status": "diag.status()",
    "health": "diag.health()",
    "thresholds": "diag.thresholds()",
    "sensor": "diag.sensor()",
    "selftest": "diag.selftest()",
}


def cmd_diag(args) -> int:
    from hostgen.board_link import ReplSession

    what, *rest = args.what or ["status"]
    if what in DIAG_CALLS and not rest:
        call = DIAG_CALLS[what]
    elif what == "last" and len(rest) <= 1 and all(r.isdigit() for r in rest):
        call = f"diag.last({rest[0] if rest else 10})"
    elif what == "set" and len(rest) in (2, 3) and all(r.lstrip("-").isdigit() for r in rest[1:]):
        call = f"diag.set_threshold({rest[0]!r}, {', '.join(rest[1:])})"
    else:
        raise HostgenError(
            f"diag command {' '.join(args.what)!r} not known; use one of {', '.join(DIAG_CALLS)}, last [N], set NAME VALUE [CHANNEL]"
        )
    with ReplSession(_port(args), args.baud, args.timeout) as session:
        print(session.exec(f"import diag\n{call}", timeout=max(args.timeout, 60)), end="")
    return 0


def cmd_monitor(args) -> int:
    from hostgen.stream import monitor

    rules = None
    if args.board:
        from hostgen.boards import load_board
        from hostgen.dsp import plan_dsp

        rules = plan_dsp(load_board(args.board), None).calibration.rules
    print(monitor(_port(args), args.baud, args.seconds, args.save, rules, sys.stdout.isatty()))
    return 0


def cmd_demo(args) -> int:
    from hostgen.boards import load_board
    from hostgen.demo import run_demo

    print(run_demo(load_board(args.board), args.seconds, log))
    return 0


def cmd_gateway(args) -> int:
    from hostgen.gateway.command import run_gateway, status

    if args.status:
        print(status(args))
        return 0
    return run_gateway(args, log)


def cmd_gateway_demo(args) -> int:
    from hostgen.boards import load_board
    from hostgen.gateway.demo import run_gateway_demo

    print(run_gateway_demo(load_board(args.board), args.seconds, log))
    return 0


def cmd_gateway_bench(args) -> int:
    from hostgen.gateway.bench import bench_command

    print(bench_command(args, log))
    return 0


def cmd_bench(args) -> int:
    from hostgen.bench import run_bench
    from hostgen.boards import load_board

    print(run_bench(load_board(args.board), args.app, args.samples, args.loop_blocks))
    return 0


def cmd_train(args) -> int:
    from hostgen.reference_model import reference_tflite

    print(reference_tflite(log))
    return 0


def cmd_cross(args) -> int:
    from hostgen.boards import load_board
    from hostgen.cross import link_placement

    board = load_board(args.board)
    build_dir = Path(args.build) if args.build else BUILD_ROOT / board.name
    print(link_placement(board, build_dir))
    return 0


def _board(parser):
    parser.add_argument("--board", required=True, help="board name (boards/<name>.toml) or path to a board file")


def _model(parser, required: bool):
    parser.add_argument("--model", required=required, help="int8 .tflite, or .keras to convert (default: the reference model)")
    parser.add_argument("--calib", help="representative float32 windows (.npy, or .npz with x) for converting a .keras model")
    parser.add_argument("--fraction", type=float, help="share of SRAM the arena may use (default: the board file's)")


def _size_args(parser):
    _board(parser)
    _model(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _app(parser):
    parser.add_argument("--app", help="application config TOML (default: hostgen/defaults/app.toml)")


def _gen_args(parser):
    _board(parser)
    _model(parser, required=False)
    _app(parser)
    parser.add_argument("--name", help="C name of the model (default: the model file's name)")
    parser.add_argument("--out", help="output directory (default: build/<board>)")
    parser.add_argument("--float-model", help="the float .keras model --model was converted from: runs the quantization check "
                        "(always run for the reference model)")


def _qcheck_args(parser):
    parser.add_argument("--model", help="the float Keras model (.keras) the int8 model was converted from (default: the reference)")
    parser.add_argument("--tflite", help="the int8 .tflite model to check (default: the reference)")
    parser.add_argument("--data", help=".npz with x (float32 windows in the model's input shape) and y (integer labels, 0 = normal); "
                        "default: the reference held-out set")
    parser.add_argument("--calib", help="representative windows (.npy, or .npz with x) for building the other quantization scheme "
                        "(default: --data x, else the reference training windows)")
    parser.add_argument("--windows", type=int, help="use only the first N windows of the data (default: all)")
    parser.add_argument("--limits", help="gate limits TOML with a [qcheck] table (default: hostgen/defaults/qcheck.toml)")
    parser.add_argument("--max-recall-drop", type=float, help="largest fault-recall drop, float minus int8, for every condition")
    parser.add_argument("--max-false-alarm-increase", type=float, help="largest false-alarm rise, int8 minus float, for every condition")
    parser.add_argument("--min-agreement", type=float, help="smallest share of windows float and int8 decide alike, for every condition")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")


def _calibrate_args(parser):
    _board(parser)
    _app(parser)
    parser.add_argument("--normal", required=True, help="int16 .npy of normal running, (samples,) or (samples, channels)")
    parser.add_argument("--fault", action="append", default=[], help="int16 .npy of faulty running (repeatable)")
    parser.add_argument("--rate", type=int, help="the recordings' sample rate in Hz (default: the app config's)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _implementation(parser):
    parser.add_argument("--impl", choices=("ref", "c", "micropython"), default="ref", help="which implementation runs")


def _filter_args(parser):
    _board(parser)
    _app(parser)
    _implementation(parser)
    parser.add_argument("--in", dest="input", required=True, help="int16 .npy recording")
    parser.add_argument("--out", dest="output", required=True, help="filtered int16 .npy to write")


def _fallback_args(parser):
    _board(parser)
    _app(parser)
    _implementation(parser)
    parser.add_argument("--in", dest="input", required=True, help="int16 .npy recording")
    parser.add_argument("--json", action="store_true", help="print every window as JSON")


def _parity_args(parser):
    _board(parser)
    _app(parser)
    parser.add_argument("--n", type=int, default=100_000, help="stream samples to compare (default 100000)")
    parser.add_argument("--windows", type=int, default=10_000, help="windows to compare (default 10000)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _decode_args(parser):
    parser.add_argument("source", help="a file of packets, a serial port or pty, or a pyserial URL (socket://...)")
    parser.add_argument("--baud", type=int, default=115_200, help="serial baud rate (default 115200)")
    parser.add_argument("--idle", type=float, default=3.0, help="stop after this many seconds without data (serial)")
    parser.add_argument("--json", action="store_true", help="one JSON object per packet")


def _replay_args(parser):
    _board(parser)
    _app(parser)
    parser.add_argument("--data", required=True, help="int16 .npy recording, (samples,) or (samples, channels)")
    parser.add_argument("--rate", type=int, help="the recording's sample rate in Hz (must match the build's)")
    parser.add_argument("--json", action="store_true", help="one JSON object per packet, then the figures")


def _vboard_args(parser):
    _board(parser)
    _app(parser)
    parser.add_argument("--link", help="path of the REPL port's symlink (default: build/vboard/<board>/repl)")
    parser.add_argument("--gateway", help="path of the gateway port's symlink (default: build/vboard/<board>/gateway)")
    parser.add_argument("--scenario", help="sensor input: a .npy recording, or a schedule such as "
                        "'normal:20,fault:10,impact,normal:10' (played in a loop)")


def _flash_args(parser):
    _board(parser)
    parser.add_argument("--port", help="the board's REPL serial port (default: found by the board file's USB ids)")
    parser.add_argument("--baud", type=int, default=115_200, help="REPL baud rate (USB CDC ignores it)")
    parser.add_argument("--firmware", help="write this stock MicroPython image first (esptool, DfuSe or ST-LINK per the board)")
    parser.add_argument("--dry-run", action="store_true", help="with --firmware: print the commands, run nothing")
    parser.add_argument("--key", help="the board's command key file (made if missing; default "
                        "~/.config/faultline/keys/<board>-<unique id>.key); the gateway config names the same file")


def _serial_args(parser, port_help: str):
    parser.add_argument("--port", help=port_help)
    parser.add_argument("--board", help="board name: finds the port by USB id when --port is not given")
    parser.add_argument("--baud", type=int, default=115_200, help="baud rate (USB CDC ignores it)")


def _diag_args(parser):
    _serial_args(parser, "the board's REPL serial port")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the board (default 5)")
    parser.add_argument("what", nargs="*", help="status (default), health, last [N], thresholds, sensor, selftest, "
                        "or set NAME VALUE [CHANNEL]")


def _monitor_args(parser):
    _serial_args(parser, "the gateway serial port (or a file / pty) the board's packets come out of")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--save", help="also write PREFIX.csv (every packet) and PREFIX_windows.npy (flagged windows)")


def _demo_args(parser):
    parser.add_argument("--board", default="stm32f4", help="board to demonstrate (default stm32f4)")
    parser.add_argument("--seconds", type=float, default=24.0, help="how long to watch the packets (default 24)")


def _bench_args(parser):
    _board(parser)
    _app(parser)
    parser.add_argument("--samples", type=int, default=200_000, help="samples per FIR timing run")
    parser.add_argument("--loop-blocks", type=int, default=100_000, help="firmware loop blocks to time (default 100000)")


def _gateway_args(parser):
    parser.add_argument("--config", help="gateway.toml: [gateway] group/edge_node/spool, [broker] url/credentials, [[board]] port/name/key")
    parser.add_argument("--port", action="append", help="a board's gateway serial port (repeat for each board)")
    parser.add_argument("--key", action="append", help="with --port: the board's command key file, one per --port")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://[USER:PASS@]HOST[:PORT] (default mqtt://127.0.0.1:1883)")
    parser.add_argument("--group", help="Sparkplug group id, e.g. line1")
    parser.add_argument("--edge-node", help="Sparkplug edge node id of this gateway (default: the host name)")
    parser.add_argument("--spool", help="spool directory (default: build/gateway/<edge node>)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--silent-s", type=float, help="a board silent this long gets a DDEATH (default 10)")
    parser.add_argument("--spool-max-bytes", type=int, help="bound the spool's packet bytes (default 256 MiB)")
    parser.add_argument("--spool-max-age-s", type=float, help="drop spooled packets older than this (default a week)")
    parser.add_argument("--max-inflight", type=int, help="QoS 1 messages awaiting PUBACK (default 200)")
    parser.add_argument("--status", action="store_true", help="per board: last seen, packets, gaps, spool depth; broker state")
    parser.add_argument("--json", action="store_true", help="with --status: as JSON")


def _gateway_demo_args(parser):
    parser.add_argument("--board", default="stm32f4", help="board to demonstrate (default stm32f4)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to watch the plant side (default 30)")


def _gateway_bench_args(parser):
    _app(parser)
    parser.add_argument("--boards", type=int, default=50, help="boards on the gateway (default 50)")
    parser.add_argument("--rates", default="1,10", help="multipliers of a board's fault-storm packet rate (default 1,10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per rate (default 20)")
    parser.add_argument("--outages", type=int, default=0, help="broker SIGKILLs mid-run (default 0; the issue's run: 10)")
    parser.add_argument("--outage-s", type=float, default=30.0, help="seconds the broker stays down (default 30)")
    parser.add_argument("--outage-signal", choices=("kill", "term"), default="kill",
                        help="stop the broker with SIGKILL (default) or SIGTERM (it saves its queues)")
    parser.add_argument("--kills", type=int, default=0, help="gateway SIGKILLs mid-run, restarted at once (default 0)")
    parser.add_argument("--max-inflight", type=int, default=200, help="the gateway's QoS 1 window (default 200)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")


def _cross_args(parser):
    _board(parser)
    parser.add_argument("--build", help="generated build directory (default: build/<board>)")


COMMANDS = {
    "boards": (cmd_boards, lambda parser: None, "list the boards and their budgets"),
    "size": (cmd_size, _size_args, "measure the tensor arena and check it against the board's budget"),
    "gen": (cmd_gen, _gen_args, "generate model arrays, op list and linker fragments into build/<board>/"),
    "train": (cmd_train, lambda parser: None, "train and quantize the reference model (cached in build/reference/)"),
    "cross": (cmd_cross, _cross_args, "link the generated C for the board's core into build/<board>/placement.elf"),
    "qcheck": (cmd_qcheck, _qcheck_args, "measure what int8 quantization costs, clean and under sensor conditions; gate it"),
    "calibrate": (cmd_calibrate, _calibrate_args, "derive fallback thresholds and fast-path limits from a machine's recording"),
    "filter": (cmd_filter, _filter_args, "filter a recording with the board's generated FIR"),
    "fallback": (cmd_fallback, _fallback_args, "run the fallback heuristic over a recording, window by window"),
    "parity": (cmd_parity, _parity_args, "compare the reference, C and MicroPython DSP bit for bit"),
    "bench": (cmd_bench, _bench_args, "time the FIR (plain MicroPython, viper, C) and the firmware loop"),
    "flash": (cmd_flash, _flash_args, "put the build's firmware on a board: compiled, copied, verified, soft-reset, checked"),
    "demo": (cmd_demo, _demo_args, "the whole path on a virtual board: generate, flash, play a fault, show the packets"),
    "diag": (cmd_diag, _diag_args, "run the board's REPL diagnostics over its serial port"),
    "monitor": (cmd_monitor, _monitor_args, "show a board's packet stream live, with counts; save it"),
    "vboard": (cmd_vboard, _vboard_args, "run a virtual board: the MicroPython unix port behind a pty, as a board's REPL"),
    "gateway": (cmd_gateway, _gateway_args, "bridge boards' packet streams to an MQTT broker (Sparkplug B), spooled, with commands back"),
    "gateway-demo": (cmd_gateway_demo, _gateway_demo_args, "a broker, 8 virtual boards and a gateway here; the alerts live on the plant side"),
    "gateway-bench": (cmd_gateway_bench, _gateway_bench_args, "load and outages through one gateway: packets/s, latency, CPU, RSS, lost"),
    "decode": (cmd_decode, _decode_args, "decode a packet stream from a file, serial port or pty"),
    "replay": (cmd_replay, _replay_args, "run the firmware on the MicroPython unix port over a recording"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise HostgenError(f"{message} (see 'hostgen {self.prog.split()[-1]} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hostgen", description="faultline host toolchain")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, add_arguments, summary) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command][0](args)
    except HostgenError as exc:
        print(f"hostgen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hostgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

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
    report, files = generate(board, args.model, args.calib, args.name, args.fraction, out, args.app, log)
    print(format_report(report))
    print(f"wrote {len(files)} files to {out}")
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


def cmd_bench(args) -> int:
    from hostgen.bench import run_bench
    from hostgen.boards import load_board

    print(run_bench(load_board(args.board), args.app, args.samples))
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


def _bench_args(parser):
    _board(parser)
    _app(parser)
    parser.add_argument("--samples", type=int, default=200_000, help="samples per timing run")


def _cross_args(parser):
    _board(parser)
    parser.add_argument("--build", help="generated build directory (default: build/<board>)")


COMMANDS = {
    "boards": (cmd_boards, lambda parser: None, "list the boards and their budgets"),
    "size": (cmd_size, _size_args, "measure the tensor arena and check it against the board's budget"),
    "gen": (cmd_gen, _gen_args, "generate model arrays, op list and linker fragments into build/<board>/"),
    "train": (cmd_train, lambda parser: None, "train and quantize the reference model (cached in build/reference/)"),
    "cross": (cmd_cross, _cross_args, "link the generated C for the board's core into build/<board>/placement.elf"),
    "calibrate": (cmd_calibrate, _calibrate_args, "derive fallback thresholds and fast-path limits from a machine's recording"),
    "filter": (cmd_filter, _filter_args, "filter a recording with the board's generated FIR"),
    "fallback": (cmd_fallback, _fallback_args, "run the fallback heuristic over a recording, window by window"),
    "parity": (cmd_parity, _parity_args, "compare the reference, C and MicroPython DSP bit for bit"),
    "bench": (cmd_bench, _bench_args, "time the FIR per sample: plain MicroPython, viper, C"),
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

"""`hostgen gen`: a board's whole build, rendered all or nothing into build/<board>/."""

from __future__ import annotations

import json

from hostgen.cli import arguments

SUMMARY = "generate model arrays, op list, DSP, firmware config and linker fragments into build/<board>/"


def add_arguments(parser) -> None:
    arguments.board(parser)
    arguments.model(parser)
    arguments.app(parser)
    parser.add_argument("--name", help="C name of the model (default: the model file's name)")
    parser.add_argument("--out", help="output directory (default: build/<board>)")
    parser.add_argument("--float-model", help="the float .keras model --model was converted from: runs the quantization check "
                        "(always run for the reference model)")


def run(args) -> int:
    from hostgen.cli.size import format_report, format_tier2
    from hostgen.codegen.build import BuildRequest, generate

    request = BuildRequest(board=args.board, model=args.model, representative=args.representative,
                           float_model=args.float_model, name=args.name, fraction=args.fraction, app=args.app, out=args.out)
    report, files, out = generate(request, arguments.log)
    print(format_report(report))
    print(format_tier2(json.loads(files["build.json"])["tier2"]))
    print(f"wrote {len(files)} files to {out}")
    return 0

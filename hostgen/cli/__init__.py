"""`hostgen <command>`: the command table, one module per command, one error type.

Each command is a module in this package with SUMMARY, add_arguments(parser) and run(args),
which also formats what the command prints. A user error prints `hostgen: <message>` on
stderr and exits 2; no traceback. Heavy imports (TensorFlow above all) happen inside run().
"""

from __future__ import annotations

import argparse
import sys

from hostgen.cli import (
    bench,
    boards,
    calibrate,
    cross,
    decode,
    demo,
    diag,
    fallback,
    filter,
    flash,
    gateway,
    gateway_bench,
    gateway_demo,
    gen,
    infer,
    monitor,
    parity,
    qcheck,
    replay,
    size,
    train,
    vboard,
)
from hostgen.errors import HostgenError

COMMANDS = {
    "boards": boards,
    "size": size,
    "gen": gen,
    "train": train,
    "cross": cross,
    "qcheck": qcheck,
    "calibrate": calibrate,
    "filter": filter,
    "fallback": fallback,
    "infer": infer,
    "parity": parity,
    "bench": bench,
    "flash": flash,
    "demo": demo,
    "diag": diag,
    "monitor": monitor,
    "vboard": vboard,
    "gateway": gateway,
    "gateway-demo": gateway_demo,
    "gateway-bench": gateway_bench,
    "decode": decode,
    "replay": replay,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        command = self.prog.split()[1:]
        raise HostgenError(f"{message} (see 'hostgen {' '.join(command + ['--help'])}')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hostgen", description="faultline host toolchain")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module in COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=module.SUMMARY, description=module.SUMMARY))
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args, unknown = build_parser().parse_known_args(argv)
        if unknown:
            raise HostgenError(f"unrecognized arguments: {' '.join(unknown)} (see 'hostgen {args.command} --help')")
        return COMMANDS[args.command].run(args)
    except HostgenError as exc:
        print(f"hostgen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hostgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

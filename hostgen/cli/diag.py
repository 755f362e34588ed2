"""`hostgen diag`: the board's REPL diagnostics (firmware/diag.py) over its serial port."""

from __future__ import annotations

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = ("run the board's REPL diagnostics over its serial port, leaving the running firmware alone "
           "(with mpremote: 'mpremote connect PORT resume exec \"import diag; diag.status()\"'; "
           "without 'resume' mpremote soft-resets the board and the pipeline stops)")
CALLS = {
    "status": "diag.status()",
    "health": "diag.health()",
    "thresholds": "diag.thresholds()",
    "sensor": "diag.sensor()",
    "selftest": "diag.selftest()",
}


def add_arguments(parser) -> None:
    arguments.serial(parser, "the board's REPL serial port")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the board (default 5)")
    parser.add_argument("what", nargs="*", help="status (default), health, last [N], thresholds, sensor, selftest, "
                        "or set NAME VALUE [CHANNEL]")


def board_call(what: list[str]) -> str:
    """The diag call a command line asks for."""
    command, *rest = what or ["status"]
    if command in CALLS and not rest:
        return CALLS[command]
    if command == "last" and len(rest) <= 1 and all(r.isdigit() for r in rest):
        return f"diag.last({rest[0] if rest else 10})"
    if command == "set" and len(rest) in (2, 3):
        for what_, text in zip(("value", "channel"), rest[1:]):
            if not text.lstrip("-").isdigit():
                raise HostgenError(f"diag set {rest[0]}: the {what_} {text!r} is not an integer; e.g. diag set {rest[0]} 120")
        return f"diag.set_threshold({rest[0]!r}, {', '.join(str(int(r)) for r in rest[1:])})"
    raise HostgenError(
        f"diag command {' '.join(what)!r} not known; use one of {', '.join(CALLS)}, last [N], set NAME VALUE [CHANNEL]"
    )


def run(args) -> int:
    from hostgen.board.link import ReplSession

    call = board_call(args.what)
    with ReplSession(arguments.port_of(args), args.baud, args.timeout) as session:
        print(session.exec(f"import diag\n{call}", timeout=max(args.timeout, 60)), end="")
    return 0

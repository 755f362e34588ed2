"""Subprocess worker for arena sizing: tries TFLM arena sizes for one model.

Runs apart from hostgen because a too-small arena can crash the TFLM runtime.
Reads `try N` or `report N` lines on stdin and answers each with one line:
`ok`, `ok <runtime-reported total>` or `fail <reason>`.
"""

import re
import sys

import numpy as np
from tflite_micro import runtime

from hostgen.util.native_output import captured_native_output


def invoke_with_arena(model: bytes, arena_bytes: int, input_count: int):
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_bytes)
    for index in range(input_count):
        details = interpreter.get_input_details(index)
        interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), index)
    interpreter.invoke()
    return interpreter


def reported_total(interpreter) -> int:
    """The runtime's own arena total, which it prints to fd 2."""
    with captured_native_output((2,)) as text:
        interpreter.print_allocations()
        found = re.search(r"Arena allocation total (\d+) bytes", text())
    return int(found.group(1)) if found else -1


def main() -> None:
    model = open(sys.argv[1], "rb").read()
    input_count = int(sys.argv[2])
    for line in sys.stdin:
        command, size = line.split()
        try:
            interpreter = invoke_with_arena(model, int(size), input_count)
        except Exception as exc:  # the runtime reports every failure as a plain exception
            print("fail", str(exc).replace("\n", " ")[:200], flush=True)
            continue
        print("ok", reported_total(interpreter) if command == "report" else "", flush=True)


if __name__ == "__main__":
    main()
